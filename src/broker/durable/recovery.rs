//! Recovery at start: read every partition's segments, keep what is whole, cut what is not,
//! and say so.
//!
//! Runs on the main thread before any shard (plain `std::fs`; nothing is serving yet). Per
//! segment, in offset order:
//! - the scan (`broker::log::scan_segment_with`) finds the whole, in-order records; zero bytes
//!   after them are padding (direct I/O writes whole blocks) and dropped silently;
//! - a damaged record is skipped by its length field when the bytes after it read as a record
//!   again (a flipped byte loses that record only); otherwise the rest of the segment is
//!   dropped (a torn write at the tail, a damaged length);
//! - the segment file is cut to its good records (or rewritten without the damaged ones), and
//!   each loss is logged with its byte count;
//! - the sparse index is rebuilt from the scan and rewritten when its file is missing or
//!   differs (an index is a cache of the log).
//!
//! What each shard needs comes out of it: every partition's next offset (for its owner), the
//! segments (for appending, retention and reads), and the newest events (every shard's
//! history, and the owner's idempotency keys).
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::data_dir::{DataDir, TOPICS_DIR};
use super::StorageError;
use crate::broker::log::{
    decode, index_name, list_segments, log_name, scan_segment_with, Corruption, Decoded, Record,
    ScanStop, SparseIndex,
};
use crate::broker::PartitionKey;
use crate::codec::topic::validate_topic;

/// What recovery keeps of one segment.
#[derive(Clone, Debug)]
pub struct SegmentMeta {
    pub base_offset: u64,
    /// Bytes of whole records (the file's logical length).
    pub len: u64,
    pub last_offset: Option<u64>,
    /// The newest record's append time (retention by age).
    pub max_timestamp_ms: i64,
    pub index: SparseIndex,
}

/// One partition after recovery.
#[derive(Debug)]
pub struct RecoveredPartition {
    pub key: PartitionKey,
    pub dir: PathBuf,
    /// In offset order; the last one is where appends continue.
    pub segments: Vec<SegmentMeta>,
    /// The offset the next event gets.
    pub next_offset: u64,
    /// The newest records, oldest first, within the history limits (copied: they do not keep
    /// segment buffers alive).
    pub tail: Vec<Record>,
}

/// Every partition of the log.
#[derive(Debug, Default)]
pub struct Recovered {
    pub partitions: Vec<RecoveredPartition>,
    /// Bytes of damaged records dropped, over all segments.
    pub damaged_bytes: u64,
    pub records: u64,
    pub bytes: u64,
}

/// How much of each partition's newest events to hand to the histories.
#[derive(Clone, Copy, Debug)]
pub struct TailLimits {
    pub events: usize,
    pub bytes: usize,
    /// Topics recovered whole rather than their newest events (the gateway's own state
    /// topics, which are read back entirely at start).
    pub whole: fn(&str) -> bool,
}

/// Recover every partition under `dir`.
pub fn recover(
    dir: &DataDir,
    tail: TailLimits,
    index_interval: u32,
) -> Result<Recovered, StorageError> {
    let mut out = Recovered::default();
    let topics_dir = dir.path().join(TOPICS_DIR);
    for topic_entry in read_dir(&topics_dir)? {
        let Some(topic) = topic_entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if validate_topic(&topic).is_err() {
            tracing::warn!(path = %topic_entry.path().display(), "not a topic directory; ignored");
            continue;
        }
        for part_entry in read_dir(&topic_entry.path())? {
            let name = part_entry.file_name();
            let Some(partition) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                tracing::warn!(path = %part_entry.path().display(), "not a partition directory; ignored");
                continue;
            };
            let key = PartitionKey {
                topic: topic.as_str().into(),
                partition,
            };
            let limits = if (tail.whole)(&topic) {
                TailLimits {
                    events: usize::MAX,
                    bytes: usize::MAX,
                    ..tail
                }
            } else {
                tail
            };
            let p = recover_partition(key, &part_entry.path(), limits, index_interval, &mut out)?;
            out.partitions.push(p);
        }
    }
    out.partitions.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, StorageError> {
    let io = |e| StorageError::Io {
        what: format!("list {}", dir.display()),
        source: e,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        entries.push(entry.map_err(io)?);
    }
    Ok(entries)
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> StorageError {
    move |source| StorageError::Io { what, source }
}

/// Recover one partition's segments.
fn recover_partition(
    key: PartitionKey,
    dir: &Path,
    limits: TailLimits,
    index_interval: u32,
    totals: &mut Recovered,
) -> Result<RecoveredPartition, StorageError> {
    let names: Vec<String> = read_dir(dir)?
        .iter()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    let mut segments = Vec::new();
    let mut tail = Tail::new(limits);
    let mut next_offset = 0;
    for files in list_segments(&names) {
        let idx_path = dir.join(index_name(files.base_offset));
        if !files.has_log {
            // Left over from a deletion cut short.
            let _ = std::fs::remove_file(&idx_path);
            continue;
        }
        let log_path = dir.join(log_name(files.base_offset));
        let min_offset = files.base_offset.max(next_offset);
        let meta = recover_segment(
            &log_path,
            files.base_offset,
            min_offset,
            index_interval,
            &mut tail,
            totals,
        )?;
        write_index_if_changed(&idx_path, &meta.index)?;
        next_offset = next_offset
            .max(meta.base_offset)
            .max(meta.last_offset.map_or(0, |o| o + 1));
        segments.push(meta);
    }
    Ok(RecoveredPartition {
        key,
        dir: dir.to_owned(),
        segments,
        next_offset,
        tail: tail.records.into(),
    })
}

/// The newest records seen so far, within the limits.
struct Tail {
    limits: TailLimits,
    records: VecDeque<Record>,
    bytes: usize,
}

impl Tail {
    fn new(limits: TailLimits) -> Self {
        Self {
            limits,
            records: VecDeque::new(),
            bytes: 0,
        }
    }

    fn push(&mut self, record: Record) {
        if self.limits.events == 0 {
            return;
        }
        self.bytes += record.data.len();
        self.records.push_back(record);
        while self.records.len() > self.limits.events
            || (self.bytes > self.limits.bytes && self.records.len() > 1)
        {
            if let Some(old) = self.records.pop_front() {
                self.bytes -= old.data.len();
            }
        }
    }
}

/// Scan one segment file, cut or rewrite it to its good records, and return what is kept.
fn recover_segment(
    path: &Path,
    base_offset: u64,
    min_offset: u64,
    index_interval: u32,
    tail: &mut Tail,
    totals: &mut Recovered,
) -> Result<SegmentMeta, StorageError> {
    let buf = std::fs::read(path).map_err(io_err(format!("read {}", path.display())))?;
    let file_len = buf.len();
    let mut kept: Vec<std::ops::Range<usize>> = Vec::new();
    let mut meta = SegmentMeta {
        base_offset,
        len: 0,
        last_offset: None,
        max_timestamp_ms: 0,
        index: SparseIndex::new(base_offset, index_interval),
    };
    let mut damaged = 0usize;
    let mut pos = 0usize;
    let mut min = min_offset;
    let no_backing = Bytes::new();
    loop {
        let rest = &buf[pos..];
        let outcome = scan_segment_with(rest, min, |record, at| {
            meta.last_offset = Some(record.offset);
            meta.max_timestamp_ms = meta.max_timestamp_ms.max(record.timestamp_ms);
            meta.index.maybe_add(record.offset, (pos + at) as u64);
            // A copy: the tail outlives this segment's buffer.
            tail.push(record.to_record(&no_backing));
            totals.records += 1;
        });
        if outcome.valid_len > 0 {
            kept.push(pos..pos + outcome.valid_len);
        }
        if let Some(last) = meta.last_offset {
            min = last + 1;
        }
        let bad_at = pos + outcome.valid_len;
        match outcome.stop {
            ScanStop::End => break,
            ScanStop::Corrupt(Corruption::UnsupportedVersion(v)) => {
                return Err(StorageError::Identity(format!(
                    "{} holds a record of format version {v} at byte {bad_at}, written by \
                     another version of the gateway; refusing to truncate it",
                    path.display()
                )));
            }
            stop => {
                // Skip the damaged record when its length still frames it: the bytes after it
                // read as a record again. Otherwise nothing after it can be trusted.
                match skip_damaged(&buf[bad_at..]) {
                    Some(skip) => {
                        tracing::error!(
                            segment = %path.display(),
                            at = bad_at,
                            bytes = skip,
                            reason = ?stop,
                            "recovery: dropped one damaged record"
                        );
                        damaged += skip;
                        pos = bad_at + skip;
                    }
                    None => {
                        if outcome.damaged_bytes > 0 {
                            tracing::error!(
                                segment = %path.display(),
                                at = bad_at,
                                bytes = outcome.damaged_bytes,
                                reason = ?stop,
                                "recovery: dropped a torn or damaged tail"
                            );
                        }
                        damaged += outcome.damaged_bytes;
                        break;
                    }
                }
            }
        }
    }
    totals.damaged_bytes += damaged as u64;
    let good_len: usize = kept.iter().map(|r| r.len()).sum();
    meta.len = good_len as u64;
    totals.bytes += meta.len;
    let prefix_only = kept.len() <= 1 && kept.first().is_none_or(|r| r.start == 0);
    if prefix_only {
        if good_len < file_len {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_err(format!("open {}", path.display())))?;
            file.set_len(good_len as u64)
                .and_then(|()| file.sync_all())
                .map_err(io_err(format!("truncate {}", path.display())))?;
        }
    } else {
        // Records were dropped from the middle: write the good ones back to back.
        let mut good = Vec::with_capacity(good_len);
        for r in &kept {
            good.extend_from_slice(&buf[r.clone()]);
        }
        replace_file(path, &good)?;
        let (index, _) = SparseIndex::rebuild(&good, base_offset, index_interval);
        meta.index = index;
    }
    Ok(meta)
}

/// The length of a damaged record at the start of `rest` when its length field frames it (the
/// bytes after it decode as a record), so only that record is lost.
fn skip_damaged(rest: &[u8]) -> Option<usize> {
    let len_bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
    let len = 8usize.checked_add(u32::from_le_bytes(len_bytes) as usize)?;
    if len <= 8 || len >= rest.len() {
        return None;
    }
    match decode(&rest[len..]) {
        Decoded::Record { .. } => Some(len),
        _ => None,
    }
}

/// Write `bytes` to a temporary file beside `path`, sync it, and rename it over `path`.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    use std::io::Write;
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let io = io_err(format!("rewrite {}", path.display()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    result.map_err(io)
}

/// Rewrite a segment's index file unless it already says the same.
fn write_index_if_changed(path: &Path, index: &SparseIndex) -> Result<(), StorageError> {
    let mut bytes = Vec::new();
    index.encode(&mut bytes);
    match std::fs::read(path) {
        Ok(old) if old == bytes => Ok(()),
        _ => replace_file(path, &bytes),
    }
}

#[cfg(test)]
mod tests;
