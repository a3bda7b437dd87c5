//! Reading a partition's log back, on any shard: what a resuming subscriber missed and its
//! shard's history no longer holds. Reads use glommio's DMA reads; the segment to start in is
//! found from the directory listing, the position in it from its sparse index (the `.idx`
//! file of a sealed segment) or by scanning from its start (the active one), and a reader that
//! goes on reading passes back where it stopped ([`ReadPosition`]), so a long catch-up never
//! scans twice.
//!
//! Only offsets below `until` are read: the caller passes the oldest offset its shard's
//! history holds, so everything read was acknowledged and delivered long ago (a record the
//! owner has written but not yet committed is never read).
use std::path::{Path, PathBuf};

use bytes::Bytes;
use glommio::io::{DmaFile, OpenOptions};

use crate::broker::log::{
    index_name, list_segments, log_name, Record, Records, ScanStop, SparseIndex,
};

/// Bytes read from a segment at a time.
const READ_CHUNK: usize = 256 * 1024;

/// Where a previous read stopped: segment base and the file position of the next record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadPosition {
    pub base: u64,
    pub position: u64,
    /// The offset the record at `position` has, or the first one above it.
    pub next_offset: u64,
}

/// One read's outcome.
#[derive(Debug, Default)]
pub struct ReadChunk {
    /// Records in offset order, from the offset asked for (or the first one above it).
    pub records: Vec<Record>,
    /// The offset to ask for next.
    pub next: u64,
    /// Where to continue reading, for the next call.
    pub position: Option<ReadPosition>,
    /// The oldest offset the log still holds; above the one asked for when it was deleted by
    /// retention (the caller reports a gap and continues from here).
    pub earliest: Option<u64>,
    /// Nothing more below `until`: the log ends there, or `until` was reached.
    pub done: bool,
}

fn glommio_io(e: glommio::GlommioError<()>) -> std::io::Error {
    e.into()
}

/// The segments of a partition as last listed (base offsets, oldest first). A reader keeps it
/// between calls: the directory is listed again only when it is empty, when a segment it names
/// is gone (retention), or at the end of the last segment it knows (a newer one may exist).
#[derive(Debug, Default)]
pub struct Listing {
    bases: Vec<u64>,
}

impl Listing {
    /// List `dir` (a few names, answered from the dentry cache; the one blocking call here).
    fn refresh(&mut self, dir: &Path) -> std::io::Result<()> {
        let names: Vec<String> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_owned))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        self.bases = list_segments(&names)
            .into_iter()
            .filter(|s| s.has_log)
            .map(|s| s.base_offset)
            .collect();
        Ok(())
    }
}

/// Read records of the partition in `dir` from offset `from` (below `until`), up to about
/// `max_bytes` of data; `hint` is the previous call's [`ReadChunk::position`], `listing` the
/// segments as the previous call saw them.
pub async fn read(
    dir: &Path,
    from: u64,
    until: u64,
    max_bytes: usize,
    hint: Option<ReadPosition>,
    index_interval: u32,
    listing: &mut Listing,
) -> std::io::Result<ReadChunk> {
    let mut out = ReadChunk {
        next: from,
        ..ReadChunk::default()
    };
    if from >= until {
        out.done = true;
        return Ok(out);
    }
    if listing.bases.is_empty() {
        listing.refresh(dir)?;
    }
    let Some(&earliest) = listing.bases.first() else {
        out.done = true;
        return Ok(out);
    };
    out.earliest = Some(earliest);
    if from < earliest {
        // Deleted by retention: the caller says so and comes back from `earliest`.
        return Ok(out);
    }
    let mut seg = listing
        .bases
        .partition_point(|&b| b <= from)
        .saturating_sub(1);
    let mut position = match hint {
        Some(h) if h.base == listing.bases[seg] && h.next_offset <= from => h.position,
        _ => start_position(dir, listing.bases[seg], from, index_interval).await,
    };
    let mut data_bytes = 0usize;
    let mut relisted = false;
    loop {
        let base = listing.bases[seg];
        let file = match DmaFile::open(dir.join(log_name(base))).await {
            Ok(f) => f,
            // Removed by retention meanwhile: the next call starts again from what is left.
            Err(e) => {
                let e = glommio_io(e);
                if e.kind() == std::io::ErrorKind::NotFound {
                    listing.bases.clear();
                    return Ok(out);
                }
                return Err(e);
            }
        };
        let size = file.file_size().await.map_err(glommio_io)?;
        let walked = walk_segment(
            &file,
            size,
            &mut position,
            from,
            until,
            max_bytes,
            &mut data_bytes,
            &mut out,
        )
        .await;
        let _ = file.close().await;
        let segment_done = walked?;
        if out.done || data_bytes >= max_bytes {
            break;
        }
        if segment_done && seg + 1 >= listing.bases.len() && !relisted {
            // The end of the last segment known: a newer one may have started since.
            relisted = true;
            listing.refresh(dir)?;
            match listing.bases.iter().position(|&b| b == base) {
                Some(at) => seg = at,
                None => return Ok(out),
            }
        }
        if segment_done && seg + 1 < listing.bases.len() {
            seg += 1;
            position = 0;
            continue;
        }
        // The last segment ends here (or is still being written past this point).
        out.done = segment_done;
        break;
    }
    out.position = Some(ReadPosition {
        base: listing.bases[seg],
        position,
        next_offset: out.next,
    });
    Ok(out)
}

/// Read one segment from `position` on, taking records in `[from, until)` until `max_bytes` of
/// data; returns whether the segment has nothing more (its end, padding, or damage).
#[allow(clippy::too_many_arguments)]
async fn walk_segment(
    file: &DmaFile,
    size: u64,
    position: &mut u64,
    from: u64,
    until: u64,
    max_bytes: usize,
    data_bytes: &mut usize,
    out: &mut ReadChunk,
) -> std::io::Result<bool> {
    let mut want = READ_CHUNK;
    while *position < size {
        let len = want.min((size - *position) as usize);
        let read = file.read_at(*position, len).await.map_err(glommio_io)?;
        // One copy per chunk; the records kept are slices of it.
        let buf = Bytes::copy_from_slice(&read);
        let mut walk = Records::new(&buf, 0);
        while let Some((at, record)) = walk.next() {
            if record.offset >= until {
                *position += at as u64;
                out.done = true;
                return Ok(false);
            }
            if record.offset >= from {
                *data_bytes += record.data.len();
                out.next = record.offset + 1;
                out.records.push(record.to_record(&buf));
                if *data_bytes >= max_bytes {
                    *position += walk.position() as u64;
                    return Ok(false);
                }
            }
        }
        *position += walk.position() as u64;
        match walk.stop() {
            // The chunk ended inside a record: read on from its start (all of it, if it is
            // larger than a chunk), unless the file ends there (being written, or torn).
            Some(ScanStop::Torn { needed }) if *position + needed as u64 <= size => {
                want = READ_CHUNK.max(needed);
            }
            _ => return Ok(true),
        }
    }
    Ok(true)
}

/// Where to start reading for `from` in the segment at `base`: its index's entry at or below
/// `from` when the index file reads as one, else the segment's start.
async fn start_position(dir: &Path, base: u64, from: u64, interval: u32) -> u64 {
    let path: PathBuf = dir.join(index_name(base));
    let Ok(file) = OpenOptions::new().read(true).dma_open(&path).await else {
        return 0;
    };
    let position = match file.file_size().await {
        Ok(size) if size > 0 => match file.read_at(0, size as usize).await {
            Ok(bytes) => SparseIndex::decode(&bytes, base, interval)
                .map(|index| index.lookup(from))
                .unwrap_or(0),
            Err(_) => 0,
        },
        _ => 0,
    };
    let _ = file.close().await;
    position
}
