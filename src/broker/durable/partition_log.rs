//! The owner shard's writer of one partition: records are encoded into memory as they are
//! appended, and a flush writes them to the active segment with glommio's direct I/O.
//!
//! Direct I/O writes whole aligned blocks, so the writer keeps the partial last block of the
//! segment in memory and rewrites it with the new records behind it (records are never padded;
//! the zeroes after the last record are overwritten by the next flush and read as padding by
//! recovery). A segment that has reached `storage.segment_bytes` is sealed (cut to its length,
//! its index written) and a new one is started at the next record's offset.
//!
//! A flush is split so that no `RefCell` borrow is held across an await:
//! [`PartitionLog::begin_flush`] takes what is pending (synchronous), [`FlushJob::run`] does
//! the I/O, [`PartitionLog::finish_flush`] records the outcome (synchronous). Appends may go on
//! meanwhile; they wait for the next flush. One flush at a time per partition (the shard's
//! commit task is the only caller).
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{Directory, DmaFile, OpenOptions};
use glommio::sync::Semaphore;

use super::recovery::{RecoveredPartition, SegmentMeta};
use crate::broker::log::{encode, index_name, log_name, EncodeError, RecordRef, SparseIndex};

/// Sizes a partition log works with (from `[storage]`).
#[derive(Clone, Copy, Debug)]
pub struct LogSettings {
    pub segment_bytes: u64,
    pub index_interval: u32,
    /// Writes start and end on multiples of this (the filesystem's block size, when larger
    /// than the device's direct-I/O alignment). A direct write that starts or ends inside a
    /// filesystem block is one ext4 must serialize and zero around: on the benchmark disk,
    /// rewriting the tail at 512-byte alignment took 6-9x longer per flush than at 4 KiB.
    pub block_bytes: u64,
}

/// A record appended since the last flush: where it will sit once written.
#[derive(Clone, Copy, Debug)]
struct PendingRecord {
    offset: u64,
    len: u32,
    timestamp_ms: i64,
}

/// The segment being appended to, once open.
struct Active {
    file: Rc<DmaFile>,
    meta: SegmentMeta,
    /// The written bytes of the segment's partial last block, `[len rounded down to the write
    /// alignment, len)`.
    block: Vec<u8>,
}

/// One partition's log, as its owner shard writes it.
pub struct PartitionLog {
    dir: PathBuf,
    settings: LogSettings,
    /// Closed segments, oldest first.
    sealed: Vec<SegmentMeta>,
    active: Option<Active>,
    /// The last recovered segment, to be reopened for appending by the first flush.
    reopen: Option<SegmentMeta>,
    pending: Vec<u8>,
    pending_records: Vec<PendingRecord>,
    /// The partition's directories exist (created by the first flush otherwise).
    dir_ready: bool,
    /// A flush taken by `begin_flush` has not been finished yet.
    in_flight: bool,
    /// Held while a flush writes, and while retention replaces a quiet segment: the two never
    /// touch the segment files at the same time.
    files: Rc<Semaphore>,
}

/// Where pending records go: the bookmark [`PartitionLog::rewind`] goes back to.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    bytes: usize,
    records: usize,
}

impl PartitionLog {
    /// A log with nothing on disk yet (a partition's first event).
    pub fn new(dir: PathBuf, settings: LogSettings) -> Self {
        Self {
            dir,
            settings,
            sealed: Vec::new(),
            active: None,
            reopen: None,
            pending: Vec::new(),
            pending_records: Vec::new(),
            dir_ready: false,
            in_flight: false,
            files: Rc::new(Semaphore::new(1)),
        }
    }

    /// The log recovery found: appends continue in its last segment unless that one is full.
    pub fn recovered(p: &RecoveredPartition, settings: LogSettings) -> Self {
        let mut log = Self::new(p.dir.clone(), settings);
        log.dir_ready = true;
        log.sealed = p.segments.clone();
        if log
            .sealed
            .last()
            .is_some_and(|last| last.len < settings.segment_bytes)
        {
            log.reopen = log.sealed.pop();
        }
        log
    }

    /// Encode `record` behind what is pending. Nothing is appended on an error.
    pub fn append(&mut self, record: &RecordRef<'_>) -> Result<(), EncodeError> {
        let len = encode(record, &mut self.pending)?;
        self.pending_records.push(PendingRecord {
            offset: record.offset,
            len: len as u32,
            timestamp_ms: record.timestamp_ms,
        });
        Ok(())
    }

    pub fn mark(&self) -> Mark {
        Mark {
            bytes: self.pending.len(),
            records: self.pending_records.len(),
        }
    }

    /// Drop what was appended after `mark` (a publish refused halfway through encoding).
    pub fn rewind(&mut self, mark: Mark) {
        self.pending.truncate(mark.bytes);
        self.pending_records.truncate(mark.records);
    }

    /// Drop everything not yet written (a failed flush: those publishes are refused).
    pub fn discard_pending(&mut self) {
        self.pending.clear();
        self.pending_records.clear();
    }

    /// Every segment, oldest first (the active one last), as written so far.
    pub fn segments(&self) -> impl Iterator<Item = &SegmentMeta> {
        self.sealed
            .iter()
            .chain(self.reopen.iter())
            .chain(self.active.iter().map(|a| &a.meta))
    }

    /// Bytes of the partition on disk.
    pub fn bytes(&self) -> u64 {
        self.segments().map(|s| s.len).sum()
    }

    /// Take what is pending for writing, deciding where it goes.
    pub fn begin_flush(&mut self) -> Option<FlushJob> {
        let first = self.pending_records.first()?.offset;
        self.in_flight = true;
        let bytes = std::mem::take(&mut self.pending);
        let records = std::mem::take(&mut self.pending_records);
        let full = self
            .active
            .as_ref()
            .is_some_and(|a| a.meta.len >= self.settings.segment_bytes);
        // Nothing here changes the log's segments: a failed flush leaves them as they were
        // (`finish_flush` applies a successful one).
        let (target, seal) = match (self.active.as_ref(), self.reopen.clone()) {
            (Some(a), _) if !full => (
                Target::Active {
                    file: a.file.clone(),
                    meta: a.meta.clone(),
                    block: a.block.clone(),
                },
                None,
            ),
            (Some(a), _) => {
                let sealing = Sealing {
                    file: a.file.clone(),
                    meta: a.meta.clone(),
                };
                (Target::Create { base: first }, Some(sealing))
            }
            (None, Some(meta)) => (Target::Reopen { meta }, None),
            (None, None) => (Target::Create { base: first }, None),
        };
        Some(FlushJob {
            files: self.files.clone(),
            dir: self.dir.clone(),
            make_dirs: !self.dir_ready,
            target,
            seal,
            bytes,
            records,
            index_interval: self.settings.index_interval,
            block_bytes: self.settings.block_bytes,
        })
    }

    /// Record a flush's outcome. On an error the records it carried are lost (their publishes
    /// are refused); the segment is as before, and the next flush rewrites from there.
    /// Returns whether a segment was sealed (retention may have work).
    pub fn finish_flush(&mut self, done: std::io::Result<Flushed>) -> std::io::Result<bool> {
        self.in_flight = false;
        let flushed = done?;
        self.dir_ready = true;
        self.reopen = None;
        let sealed = flushed.sealed.is_some();
        if let Some(meta) = flushed.sealed {
            self.sealed.push(meta);
        }
        self.active = Some(Active {
            file: flushed.file,
            meta: flushed.meta,
            block: flushed.block,
        });
        Ok(sealed)
    }

    /// Delete whole sealed segments, oldest first, while the partition is over `max_bytes`
    /// (0: no limit) or their newest event is older than `min_timestamp_ms`. Returns the
    /// files to remove (the caller removes them off the shard's critical path).
    pub fn expire(&mut self, max_bytes: u64, min_timestamp_ms: Option<i64>) -> Vec<PathBuf> {
        let mut total = self.bytes();
        let mut removed = Vec::new();
        while let Some(oldest) = self.sealed.first() {
            let too_big = max_bytes > 0 && total > max_bytes;
            let too_old = min_timestamp_ms.is_some_and(|min| oldest.max_timestamp_ms < min);
            if !too_big && !too_old {
                break;
            }
            let oldest = self.sealed.remove(0);
            total -= oldest.len;
            removed.push(self.dir.join(log_name(oldest.base_offset)));
            removed.push(self.dir.join(index_name(oldest.base_offset)));
        }
        removed
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What a flush and a segment replacement both hold (see [`PartitionLog::files`]).
    pub fn files_lock(&self) -> Rc<Semaphore> {
        self.files.clone()
    }

    /// The segment being appended to, when every event in it is older than `min_timestamp_ms`
    /// and nothing is pending or being written: a quiet partition's last events would
    /// otherwise outlive retention forever. Its base and the offset the next event gets; the
    /// caller (holding [`PartitionLog::files_lock`]) starts an empty segment there, so the
    /// offset survives a restart, and then [`PartitionLog::retired`] drops the old one.
    pub fn quiet_expired_segment(&self, min_timestamp_ms: i64) -> Option<(u64, u64)> {
        if self.in_flight || !self.pending.is_empty() {
            return None;
        }
        let current = self
            .active
            .as_ref()
            .map(|a| &a.meta)
            .or(self.reopen.as_ref())?;
        let last = current.last_offset?;
        (current.max_timestamp_ms < min_timestamp_ms).then_some((current.base_offset, last + 1))
    }

    /// The quiet segment at `old_base` was replaced by an empty one at `next`: append there
    /// from now on. The old segment's files, to remove.
    pub fn retired(&mut self, old_base: u64, next: u64) -> Vec<PathBuf> {
        self.active = None;
        self.reopen = Some(SegmentMeta {
            base_offset: next,
            len: 0,
            last_offset: None,
            max_timestamp_ms: 0,
            index: SparseIndex::new(next, self.settings.index_interval),
        });
        vec![
            self.dir.join(log_name(old_base)),
            self.dir.join(index_name(old_base)),
        ]
    }
}

/// Create the empty segment file at `base` in `dir` (a quiet segment's successor) and make its
/// name durable.
pub async fn create_empty_segment(dir: &Path, base: u64) -> std::io::Result<()> {
    let file = create_file(&dir.join(log_name(base))).await?;
    file.close().await.map_err(glommio_io)?;
    sync_dir(dir).await
}

/// Which file a flush writes to.
enum Target {
    Active {
        file: Rc<DmaFile>,
        meta: SegmentMeta,
        block: Vec<u8>,
    },
    /// The last segment recovery found, not open yet.
    Reopen { meta: SegmentMeta },
    /// A new segment starting at `base`.
    Create { base: u64 },
}

/// A full segment to close before the next one starts.
struct Sealing {
    file: Rc<DmaFile>,
    meta: SegmentMeta,
}

/// The I/O of one flush, detached from the log so no borrow is held while it runs.
pub struct FlushJob {
    files: Rc<Semaphore>,
    dir: PathBuf,
    make_dirs: bool,
    target: Target,
    seal: Option<Sealing>,
    bytes: Vec<u8>,
    records: Vec<PendingRecord>,
    index_interval: u32,
    block_bytes: u64,
}

/// What a flush wrote: the segment it appended to, as it now stands.
pub struct Flushed {
    file: Rc<DmaFile>,
    meta: SegmentMeta,
    block: Vec<u8>,
    /// The segment closed before this one started, if any.
    sealed: Option<SegmentMeta>,
}

impl Flushed {
    pub fn file(&self) -> &Rc<DmaFile> {
        &self.file
    }
}

fn glommio_io(e: glommio::GlommioError<()>) -> std::io::Error {
    e.into()
}

impl FlushJob {
    /// Records this flush writes.
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Bytes of records this flush writes.
    pub fn byte_count(&self) -> usize {
        self.bytes.len()
    }

    /// Write the records (sealing the previous segment or opening one first, as decided).
    pub async fn run(self) -> std::io::Result<Flushed> {
        // No segment replacement while this writes (released when this returns).
        let _files = self
            .files
            .acquire_static_permit(1)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if self.make_dirs {
            create_dirs(&self.dir).await?;
        }
        let sealed = match self.seal {
            Some(seal) => {
                let meta = seal.meta.clone();
                seal_segment(&self.dir, seal).await?;
                Some(meta)
            }
            None => None,
        };
        let (file, mut meta, block) = match self.target {
            Target::Active { file, meta, block } => (file, meta, block),
            Target::Reopen { meta } => {
                let path = self.dir.join(log_name(meta.base_offset));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .dma_open(&path)
                    .await
                    .map_err(glommio_io)?;
                let start = Alignment::of(&file, self.block_bytes).down(meta.len);
                let block = if meta.len > start {
                    let read = file
                        .read_at(start, (meta.len - start) as usize)
                        .await
                        .map_err(glommio_io)?;
                    read.to_vec()
                } else {
                    Vec::new()
                };
                (Rc::new(file), meta, block)
            }
            Target::Create { base } => {
                let file = create_file(&self.dir.join(log_name(base))).await?;
                // The new file's name must survive a crash before anything in it is
                // acknowledged.
                sync_dir(&self.dir).await?;
                let meta = SegmentMeta {
                    base_offset: base,
                    len: 0,
                    last_offset: None,
                    max_timestamp_ms: 0,
                    index: SparseIndex::new(base, self.index_interval),
                };
                (Rc::new(file), meta, Vec::new())
            }
        };
        let align = Alignment::of(&file, self.block_bytes);
        let start = align.down(meta.len);
        let total = block.len() + self.bytes.len();
        let size = align.up(total as u64) as usize;
        let mut buf = file.alloc_dma_buffer(size);
        {
            let out = buf.as_bytes_mut();
            out[..block.len()].copy_from_slice(&block);
            out[block.len()..total].copy_from_slice(&self.bytes);
            out[total..].fill(0);
        }
        let new_len = meta.len + self.bytes.len() as u64;
        let block_start = (align.down(new_len) - start) as usize;
        let next_block = buf.as_bytes()[block_start..total].to_vec();
        let failure = match file.write_at(buf, start).await.map_err(glommio_io) {
            Ok(n) if n >= size => None,
            Ok(n) => Some(std::io::Error::other(format!(
                "short write: {n} of {size} bytes at {start}"
            ))),
            Err(e) => Some(e),
        };
        if let Some(e) = failure {
            // Part of it may be on disk (a short write at a file-size limit): cut it off, so no
            // record of a refused publish can come back at recovery.
            let _ = file.truncate(meta.len).await;
            return Err(e);
        }
        let mut position = meta.len;
        for r in &self.records {
            meta.index.maybe_add(r.offset, position);
            meta.last_offset = Some(r.offset);
            meta.max_timestamp_ms = meta.max_timestamp_ms.max(r.timestamp_ms);
            position += u64::from(r.len);
        }
        meta.len = new_len;
        Ok(Flushed {
            file,
            meta,
            block: next_block,
            sealed,
        })
    }
}

/// Where a flush's write starts and ends: the larger of the file's direct-I/O alignment and the
/// filesystem block size (both powers of two).
#[derive(Clone, Copy)]
struct Alignment(u64);

impl Alignment {
    fn of(file: &DmaFile, block_bytes: u64) -> Self {
        Self(file.alignment().max(block_bytes))
    }

    fn down(self, v: u64) -> u64 {
        v / self.0 * self.0
    }

    fn up(self, v: u64) -> u64 {
        v.div_ceil(self.0) * self.0
    }
}

/// `topics/{topic}/{partition}`, each level created if missing, and synced into its parent.
async fn create_dirs(dir: &Path) -> std::io::Result<()> {
    let partition_parent = dir.parent();
    let topics = partition_parent.and_then(Path::parent);
    for level in [partition_parent, Some(dir)].into_iter().flatten() {
        Directory::create(level).await.map_err(glommio_io)?;
    }
    for parent in [topics, partition_parent].into_iter().flatten() {
        sync_dir(parent).await?;
    }
    Ok(())
}

/// A new (or emptied) file for direct I/O.
async fn create_file(path: &Path) -> std::io::Result<DmaFile> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .dma_open(path)
        .await
        .map_err(glommio_io)
}

async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let d = Directory::open(dir).await.map_err(glommio_io)?;
    d.sync().await.map_err(glommio_io)?;
    d.close().await.map_err(glommio_io)
}

/// Cut a full segment to its length and write its index (a cache: a crash before this ends
/// costs a rebuild at recovery, nothing else).
async fn seal_segment(dir: &Path, seal: Sealing) -> std::io::Result<()> {
    seal.file
        .truncate(seal.meta.len)
        .await
        .map_err(glommio_io)?;
    let mut bytes = Vec::new();
    seal.meta.index.encode(&mut bytes);
    let file = create_file(&dir.join(index_name(seal.meta.base_offset))).await?;
    let size = file.align_up(bytes.len() as u64) as usize;
    let mut buf = file.alloc_dma_buffer(size);
    buf.as_bytes_mut()[..bytes.len()].copy_from_slice(&bytes);
    buf.as_bytes_mut()[bytes.len()..].fill(0);
    file.write_at(buf, 0).await.map_err(glommio_io)?;
    file.close().await.map_err(glommio_io)?;
    Ok(())
}

#[cfg(test)]
mod tests;
