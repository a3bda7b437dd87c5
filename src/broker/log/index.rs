//! The sparse offset index of one segment: which file position to start reading from to find
//! an offset, and its on-disk form (validated whole; a damaged index is rebuilt, never trusted).
use super::segment_scan::{scan_segment_with, ScanOutcome};

/// `SGIX`: an index file, not a segment or anything else.
const MAGIC: [u8; 4] = *b"SGIX";
const VERSION: u32 = 1;
/// Magic, version, base offset, entry count.
const HEAD_LEN: usize = 4 + 4 + 8 + 4;
const ENTRY_LEN: usize = 8;
const CRC_LEN: usize = 4;

/// One entry: the record at `base + relative_offset` starts at byte `position` of the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// One entry per `interval_bytes` of log, strictly increasing in offset and position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseIndex {
    base_offset: u64,
    interval_bytes: u32,
    entries: Vec<IndexEntry>,
}

/// Why index bytes were refused. Any of these means: rebuild the index from the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("index is {len} bytes, shorter than its header and checksum")]
    TooShort { len: usize },
    #[error("not an index file (bad magic)")]
    BadMagic,
    #[error("unsupported index version {0}")]
    UnsupportedVersion(u32),
    #[error("index is for base offset {found}, not {expected}")]
    WrongBase { found: u64, expected: u64 },
    #[error("index says {count} entries but holds fewer")]
    Truncated { count: u32 },
    #[error("index CRC32C mismatch")]
    BadCrc,
    #[error("index entry {at} does not increase in offset and position")]
    NotIncreasing { at: usize },
    #[error("non-zero bytes after the index checksum")]
    TrailingBytes,
}

impl SparseIndex {
    /// An empty index for the segment at `base_offset`, one entry per `interval_bytes` of log.
    pub fn new(base_offset: u64, interval_bytes: u32) -> Self {
        Self {
            base_offset,
            interval_bytes,
            entries: Vec::new(),
        }
    }

    pub fn base_offset(&self) -> u64 {
        self.base_offset
    }

    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// Note that the record at `offset` starts at `position`; kept when it is at least
    /// `interval_bytes` past the previous entry (or the segment start). Returns whether it was
    /// kept. Entries that would not increase, or do not fit the u32 fields, are not kept:
    /// [`SparseIndex::lookup`] stays correct without them, it only scans further.
    pub fn maybe_add(&mut self, offset: u64, position: u64) -> bool {
        let Some(relative_offset) = offset
            .checked_sub(self.base_offset)
            .and_then(|r| u32::try_from(r).ok())
        else {
            return false;
        };
        let Ok(position) = u32::try_from(position) else {
            return false;
        };
        // Position 0 is the implicit first entry: `lookup` answers 0 when nothing is below.
        let (last_offset, last_position) = self
            .entries
            .last()
            .map_or((None, 0), |e| (Some(e.relative_offset), e.position));
        let far_enough = position
            .checked_sub(last_position)
            .is_some_and(|gap| gap > 0 && gap >= self.interval_bytes);
        if !far_enough || last_offset.is_some_and(|last| relative_offset <= last) {
            return false;
        }
        self.entries.push(IndexEntry {
            relative_offset,
            position,
        });
        true
    }

    /// The file position to start scanning from for `offset`: that of the greatest entry at or
    /// below it, else 0. Never past where the record at `offset` (or the first one after it,
    /// across a gap) starts.
    pub fn lookup(&self, offset: u64) -> u64 {
        let Some(relative) = offset.checked_sub(self.base_offset) else {
            return 0;
        };
        // Past the u32 range every entry is below it.
        let relative = u32::try_from(relative).unwrap_or(u32::MAX);
        let above = self
            .entries
            .partition_point(|e| e.relative_offset <= relative);
        above
            .checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .map_or(0, |e| e.position.into())
    }

    /// Append the index file's bytes to `out` (layout in the module doc).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(HEAD_LEN + self.entries.len() * ENTRY_LEN + CRC_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.base_offset.to_le_bytes());
        // Entries are at least one byte of segment apart and positions are u32, so they
        // number fewer than u32::MAX.
        let count = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.relative_offset.to_le_bytes());
            out.extend_from_slice(&e.position.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }

    /// The index in `bytes`, for the segment at `base_offset`; anything short of exactly a valid
    /// index (zero bytes after it excepted: direct I/O writes whole blocks) is an error.
    pub fn decode(
        bytes: &[u8],
        base_offset: u64,
        interval_bytes: u32,
    ) -> Result<SparseIndex, IndexError> {
        let Some((head, rest)) = bytes.split_first_chunk::<HEAD_LEN>() else {
            return Err(IndexError::TooShort { len: bytes.len() });
        };
        let [m0, m1, m2, m3, v0, v1, v2, v3, b0, b1, b2, b3, b4, b5, b6, b7, n0, n1, n2, n3] =
            *head;
        if [m0, m1, m2, m3] != MAGIC {
            return Err(IndexError::BadMagic);
        }
        let count = u32::from_le_bytes([n0, n1, n2, n3]);
        // Bound the count by the bytes present before it sizes anything.
        let entries_len = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(ENTRY_LEN))
            .filter(|&len| len.saturating_add(CRC_LEN) <= rest.len())
            .ok_or(IndexError::Truncated { count })?;
        let (entry_bytes, rest) = rest.split_at(entries_len);
        let Some((&stored, padding)) = rest.split_first_chunk::<CRC_LEN>() else {
            return Err(IndexError::Truncated { count });
        };
        if crc32c::crc32c(&bytes[..HEAD_LEN + entries_len]) != u32::from_le_bytes(stored) {
            return Err(IndexError::BadCrc);
        }
        // Checked after the CRC: with a good CRC these are another writer's, not damage.
        let version = u32::from_le_bytes([v0, v1, v2, v3]);
        if version != VERSION {
            return Err(IndexError::UnsupportedVersion(version));
        }
        let found = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
        if found != base_offset {
            return Err(IndexError::WrongBase {
                found,
                expected: base_offset,
            });
        }
        if padding.iter().any(|&b| b != 0) {
            return Err(IndexError::TrailingBytes);
        }
        let mut index = SparseIndex::new(base_offset, interval_bytes);
        index.entries.reserve_exact(entries_len / ENTRY_LEN);
        for (at, chunk) in entry_bytes.chunks_exact(ENTRY_LEN).enumerate() {
            let [o0, o1, o2, o3, p0, p1, p2, p3] = chunk else {
                return Err(IndexError::Truncated { count });
            };
            let entry = IndexEntry {
                relative_offset: u32::from_le_bytes([*o0, *o1, *o2, *o3]),
                position: u32::from_le_bytes([*p0, *p1, *p2, *p3]),
            };
            let increasing = index.entries.last().is_none_or(|last| {
                entry.relative_offset > last.relative_offset && entry.position > last.position
            });
            if !increasing {
                return Err(IndexError::NotIncreasing { at });
            }
            index.entries.push(entry);
        }
        Ok(index)
    }

    /// The index of a segment's bytes, rebuilt by scanning them (recovery, when the index file
    /// is missing or refused), with the scan's outcome.
    pub fn rebuild(segment: &[u8], base_offset: u64, interval_bytes: u32) -> (Self, ScanOutcome) {
        let mut index = Self::new(base_offset, interval_bytes);
        let outcome = scan_segment_with(segment, base_offset, |record, position| {
            index.maybe_add(record.offset, position as u64);
        });
        (index, outcome)
    }
}

#[cfg(test)]
mod tests;
