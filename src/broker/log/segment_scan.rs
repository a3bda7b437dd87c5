//! Walking a segment's records: the recovery scan (how much of a segment is whole, in-order
//! records, and why the rest is not) and the same walk as an iterator for readers.
use super::record::{decode, Corruption, Decoded, RecordView};

/// Why a walk over records ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanStop {
    /// The bytes ended at a record boundary, or only zero bytes follow (direct-I/O padding of
    /// the last block, or a preallocated region never written).
    End,
    /// The bytes end inside a record that needs `needed` bytes from its start: a reader reads
    /// more; at the end of a segment it is a torn write (or a damaged length field).
    Torn { needed: usize },
    /// Bytes that are not a record, followed by something other than zeroes.
    Corrupt(Corruption),
    /// A valid record whose offset is not above the previous record's, or, when it is the
    /// first (`previous` is `None`), below the segment's base offset.
    OutOfOrder { offset: u64, previous: Option<u64> },
}

/// The whole, in-order records at the start of a buffer, with the position each starts at.
/// Stops for good at the first one that is not; [`Records::stop`] then says why and
/// [`Records::position`] is the length of the good part.
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The smallest offset the first record may have.
    min: u64,
    previous: Option<u64>,
    stop: Option<ScanStop>,
}

impl<'a> Records<'a> {
    /// Records of `buf`, the first at offset `min_offset` or above (a segment's base offset;
    /// for a reader starting at an index entry, that entry's offset).
    pub fn new(buf: &'a [u8], min_offset: u64) -> Self {
        Self {
            buf,
            pos: 0,
            min: min_offset,
            previous: None,
            stop: None,
        }
    }

    /// Bytes of the good records read so far: where the next one starts.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Why the walk ended; `None` while it has not.
    pub fn stop(&self) -> Option<ScanStop> {
        self.stop
    }

    fn end(&mut self, stop: ScanStop, rest: &[u8]) -> Option<(usize, RecordView<'a>)> {
        // Zeroes after the last record are where writing stopped, not damage.
        let zeroes = rest.iter().all(|&b| b == 0);
        self.stop = Some(if zeroes { ScanStop::End } else { stop });
        None
    }
}

impl<'a> Iterator for Records<'a> {
    /// The record's start position in the buffer, and the record.
    type Item = (usize, RecordView<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.stop.is_some() {
            return None;
        }
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        match decode(rest) {
            Decoded::Record { record, len } => {
                let in_order = match self.previous {
                    Some(previous) => record.offset > previous,
                    None => record.offset >= self.min,
                };
                if !in_order {
                    let previous = self.previous;
                    let offset = record.offset;
                    return self.end(ScanStop::OutOfOrder { offset, previous }, rest);
                }
                let start = self.pos;
                self.pos += len;
                self.previous = Some(record.offset);
                Some((start, record))
            }
            Decoded::Incomplete { needed } => self.end(ScanStop::Torn { needed }, rest),
            Decoded::Corrupt(why) => self.end(ScanStop::Corrupt(why), rest),
        }
    }
}

/// What recovery found in one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Bytes of whole, valid, in-order records from the start: where the log is truncated to
    /// and appending continues.
    pub valid_len: usize,
    pub records: usize,
    pub first_offset: Option<u64>,
    pub last_offset: Option<u64>,
    /// Bytes after `valid_len` up to the last non-zero byte: what the log line calls damaged.
    pub damaged_bytes: usize,
    /// Zero bytes at the very end (after any damage): padding or never written.
    pub padding_bytes: usize,
    pub stop: ScanStop,
}

impl ScanOutcome {
    /// Everything after `valid_len`: `damaged_bytes + padding_bytes`.
    pub fn dropped_bytes(&self) -> usize {
        self.damaged_bytes + self.padding_bytes
    }
}

/// Scan a whole segment whose records start at `base_offset` or above.
pub fn scan_segment(buf: &[u8], base_offset: u64) -> ScanOutcome {
    scan_segment_with(buf, base_offset, |_, _| {})
}

/// [`scan_segment`], handing each good record and its position to `on_record`, so recovery can
/// rebuild the index and the idempotency keys in the same pass.
pub fn scan_segment_with(
    buf: &[u8],
    base_offset: u64,
    mut on_record: impl FnMut(&RecordView<'_>, usize),
) -> ScanOutcome {
    let mut walk = Records::new(buf, base_offset);
    let (mut records, mut first_offset, mut last_offset) = (0, None, None);
    for (position, record) in walk.by_ref() {
        on_record(&record, position);
        records += 1;
        first_offset.get_or_insert(record.offset);
        last_offset = Some(record.offset);
    }
    let valid_len = walk.position();
    let tail = buf.get(valid_len..).unwrap_or_default();
    let damaged_bytes = tail.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    ScanOutcome {
        valid_len,
        records,
        first_offset,
        last_offset,
        damaged_bytes,
        padding_bytes: tail.len() - damaged_bytes,
        // A walk only ends by stopping, so this default is never used.
        stop: walk.stop().unwrap_or(ScanStop::End),
    }
}

#[cfg(test)]
mod tests;
