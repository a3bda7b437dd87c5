//! The data directory: created if missing, locked so two gateways cannot write one log, and
//! stamped with the log's identity (its epoch, the partition count it was written with).
//!
//! Opened once at start, on the main thread, before any shard runs: plain `std::fs` here blocks
//! no reactor.
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::StorageError;

/// The file that says whose log this is.
pub const IDENTITY_FILE: &str = "identity";
/// The file a running gateway holds an exclusive `flock` on.
pub const LOCK_FILE: &str = "LOCK";
/// Where each topic's partitions live: `topics/{topic}/{partition}/`.
pub const TOPICS_DIR: &str = "topics";
/// The first line of the identity file.
const MAGIC: &str = "sluicegate-log 1";

/// The write alignment when the filesystem does not say (ext4's and XFS's usual block).
pub const DEFAULT_BLOCK_BYTES: u64 = 4096;

/// The write alignment for a filesystem whose preferred I/O size (`st_blksize`) is `blksize`:
/// that size when it is a power of two from 512 B to 64 KiB (a filesystem block), 4 KiB
/// otherwise (some filesystems report a large transfer size there, and every flush rewrites up
/// to one aligned block of the log's tail).
pub fn block_bytes(blksize: u64) -> u64 {
    if blksize.is_power_of_two() && (512..=64 * 1024).contains(&blksize) {
        blksize
    } else {
        DEFAULT_BLOCK_BYTES
    }
}

/// What makes ids of this log valid: the epoch stamped into them, and the partition count the
/// events were routed with (ids name partitions by position).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub epoch: u64,
    pub partitions: u32,
}

/// An open, locked data directory. The lock is held as long as this lives.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    identity: Identity,
    /// The filesystem block size the log's writes are aligned to (see [`block_bytes`]).
    block_bytes: u64,
    /// Held open: closing it would release the `flock`.
    _lock: File,
}

impl DataDir {
    /// Create (if missing), lock and identify `path` for a gateway with `partitions` per topic.
    pub fn open(path: &Path, partitions: u32) -> Result<Self, StorageError> {
        let io = |what: &str, e: std::io::Error| StorageError::Io {
            what: format!("{what} {}", path.display()),
            source: e,
        };
        std::fs::create_dir_all(path).map_err(|e| io("create", e))?;
        let path = path.canonicalize().map_err(|e| io("resolve", e))?;
        let lock = lock(&path)?;
        let identity = match read_identity(&path)? {
            Some(found) => {
                if found.partitions != partitions {
                    return Err(StorageError::Identity(format!(
                        "{} holds a log written with memory_broker.partitions = {}; this \
                         configuration says {partitions}. Ids and keys are routed by partition \
                         count: keep {} or use another storage.data_dir",
                        path.display(),
                        found.partitions,
                        found.partitions
                    )));
                }
                found
            }
            None => {
                if has_entries(&path.join(TOPICS_DIR)) {
                    return Err(StorageError::Identity(format!(
                        "{} has a {TOPICS_DIR}/ directory but no {IDENTITY_FILE} file: it was \
                         not written by this gateway, or its identity was lost; refusing to \
                         append to a log whose ids cannot be told apart from a new one's",
                        path.display()
                    )));
                }
                let identity = Identity {
                    epoch: SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(1, |d| d.as_millis() as u64),
                    partitions,
                };
                write_identity(&path, identity)?;
                identity
            }
        };
        std::fs::create_dir_all(path.join(TOPICS_DIR)).map_err(|e| io("create topics in", e))?;
        let block_bytes = std::fs::metadata(path.join(TOPICS_DIR))
            .map(|m| block_bytes(std::os::unix::fs::MetadataExt::blksize(&m)))
            .unwrap_or(DEFAULT_BLOCK_BYTES);
        Ok(Self {
            path,
            identity,
            block_bytes,
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The filesystem block size the log's writes are aligned to.
    pub fn block_bytes(&self) -> u64 {
        self.block_bytes
    }

    pub fn identity(&self) -> Identity {
        self.identity
    }
}

/// The directory of one partition's segments under data directory `root`.
pub fn partition_dir(root: &Path, topic: &str, partition: u32) -> PathBuf {
    // Topic names are `[A-Za-z0-9._-]`, never `.` or `..` (codec::topic): safe path parts.
    root.join(TOPICS_DIR)
        .join(topic)
        .join(partition.to_string())
}

fn has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// Take the exclusive lock, writing our pid into the file for the next one to name.
fn lock(dir: &Path) -> Result<File, StorageError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StorageError::Io {
            what: format!("open {}", path.display()),
            source: e,
        })?;
    if !try_flock(&file) {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        return Err(StorageError::Locked(format!(
            "{} is in use by another gateway{}; one data directory per gateway (storage.data_dir)",
            dir.display(),
            if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            }
        )));
    }
    let _ = file.set_len(0);
    let _ = file.write_all(std::process::id().to_string().as_bytes());
    Ok(file)
}

/// An exclusive, non-blocking lock (`flock` on Linux): released by the kernel when the
/// process dies, so a crashed gateway never leaves a stale lock.
fn try_flock(file: &File) -> bool {
    file.try_lock().is_ok()
}

fn read_identity(dir: &Path) -> Result<Option<Identity>, StorageError> {
    let path = dir.join(IDENTITY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StorageError::Io {
                what: format!("read {}", path.display()),
                source: e,
            })
        }
    };
    parse_identity(&text).map(Some).ok_or_else(|| {
        StorageError::Identity(format!(
            "{} is not a Sluicegate log identity (expected `{MAGIC}`, `epoch N`, `partitions N`)",
            path.display()
        ))
    })
}

/// `sluicegate-log 1`, `epoch N`, `partitions N`, one per line.
pub fn parse_identity(text: &str) -> Option<Identity> {
    let mut lines = text.lines();
    if lines.next()? != MAGIC {
        return None;
    }
    let (mut epoch, mut partitions) = (None, None);
    for line in lines {
        match line.split_once(' ') {
            Some(("epoch", v)) => epoch = v.parse().ok(),
            Some(("partitions", v)) => partitions = v.parse().ok(),
            _ => {}
        }
    }
    Some(Identity {
        epoch: epoch?,
        partitions: partitions?,
    })
}

/// Write the identity to a temporary file, sync it, rename it into place, sync the directory:
/// a crash leaves either no identity or a whole one.
fn write_identity(dir: &Path, identity: Identity) -> Result<(), StorageError> {
    let path = dir.join(IDENTITY_FILE);
    let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
    let io = |e: std::io::Error| StorageError::Io {
        what: format!("write {}", path.display()),
        source: e,
    };
    let text = format!(
        "{MAGIC}\nepoch {}\npartitions {}\n",
        identity.epoch, identity.partitions
    );
    let mut file = File::create(&tmp).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

/// Open one non-empty file of the data directory with direct I/O before any other, on every
/// shard. glommio probes whether the device supports polled I/O with a read at offset 0 of
/// the first file opened on it, and remembers the answer for the process: a new, empty
/// segment file answers "yes" (nothing to read), and every later read of a real segment then
/// fails with EOPNOTSUPP on devices without polled I/O. The identity file is never empty.
pub async fn probe_direct_io(root: &std::path::Path) {
    let path = root.join(IDENTITY_FILE);
    match glommio::io::DmaFile::open(&path).await {
        Ok(file) => {
            let _ = file.close().await;
        }
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "direct I/O probe failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_align_to_a_filesystem_block_and_not_to_a_large_transfer_size() {
        assert_eq!(block_bytes(4096), 4096);
        assert_eq!(block_bytes(512), 512);
        assert_eq!(block_bytes(65536), 65536);
        // Reported by some filesystems as the preferred transfer size, not a block.
        assert_eq!(block_bytes(1 << 20), DEFAULT_BLOCK_BYTES);
        assert_eq!(block_bytes(3000), DEFAULT_BLOCK_BYTES);
        assert_eq!(block_bytes(256), DEFAULT_BLOCK_BYTES);
        assert_eq!(block_bytes(0), DEFAULT_BLOCK_BYTES);
    }

    #[test]
    fn an_opened_directory_knows_its_block_size() {
        let root = scratch("block");
        let dir = DataDir::open(&root, 1).expect("open");
        let b = dir.block_bytes();
        assert!(b.is_power_of_two() && (512..=65536).contains(&b), "{b}");
        drop(dir);
        let _ = std::fs::remove_dir_all(&root);
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sluicegate-datadir-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_new_directory_gets_an_identity_that_the_next_start_reads_back() {
        let dir = scratch("new");
        let first = DataDir::open(&dir, 2).expect("open");
        let epoch = first.identity().epoch;
        drop(first);
        let again = DataDir::open(&dir, 2).expect("reopen");
        assert_eq!(
            again.identity(),
            Identity {
                epoch,
                partitions: 2
            }
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_opener_is_refused_while_the_first_holds_the_lock() {
        let dir = scratch("lock");
        let held = DataDir::open(&dir, 1).expect("open");
        let err = DataDir::open(&dir, 1).expect_err("locked");
        assert!(
            err.to_string().contains("in use by another gateway"),
            "{err}"
        );
        drop(held);
        DataDir::open(&dir, 1).expect("free again");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_changed_partition_count_or_a_foreign_log_is_refused() {
        let dir = scratch("foreign");
        drop(DataDir::open(&dir, 1).expect("open"));
        let err = DataDir::open(&dir, 4).expect_err("partition count changed");
        assert!(err.to_string().contains("partitions = 1"), "{err}");
        std::fs::remove_file(dir.join(IDENTITY_FILE)).expect("rm identity");
        std::fs::create_dir_all(dir.join(TOPICS_DIR).join("t").join("0")).expect("mkdir");
        let err = DataDir::open(&dir, 1).expect_err("no identity");
        assert!(err.to_string().contains("no identity file"), "{err}");
        std::fs::write(dir.join(IDENTITY_FILE), "something else\n").expect("write");
        let err = DataDir::open(&dir, 1).expect_err("not ours");
        assert!(
            err.to_string().contains("not a Sluicegate log identity"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
