//! `JwtKeys`: the current `KeySet`, shared by every shard, swapped whole on reload (SIGHUP, or a
//! key file changing under the watcher). Shards poll a generation counter per request, a single
//! atomic load, and take the lock only when it moved.

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use super::keys::KeySet;
use super::source::file_of;
use crate::config::JwtKeyConfig;

/// The JWT keys in force and how to reload them. `Send + Sync`; share it in an `Arc`.
pub struct JwtKeys {
    configs: Vec<JwtKeyConfig>,
    current: RwLock<Arc<KeySet>>,
    generation: AtomicU64,
}

/// What the watcher compares: per key file, (mtime ns, size, inode), or `None` if unreadable.
/// The inode catches an atomic rename of a same-size file with a preserved mtime.
type Fingerprint = Vec<Option<(i64, u64, u64)>>;

impl JwtKeys {
    /// Loads the keys of `[[auth.jwt_keys]]` (generation 0).
    pub fn new(configs: Vec<JwtKeyConfig>) -> Result<Self, String> {
        let set = KeySet::load(&configs)?;
        tracing::info!(count = set.len(), kids = ?set.kids(), "jwt keys loaded");
        Ok(Self {
            configs,
            current: RwLock::new(Arc::new(set)),
            generation: AtomicU64::new(0),
        })
    }

    /// The generation and the key set of that generation, read together.
    pub fn current(&self) -> (u64, Arc<KeySet>) {
        // A poisoned lock only means a panic elsewhere while holding it; the Arc inside is
        // whole either way (it is replaced by one assignment).
        let set = self.current.read().unwrap_or_else(PoisonError::into_inner);
        (self.generation.load(Ordering::Acquire), Arc::clone(&set))
    }

    /// The generation: bumped by every successful reload. Cheap enough to check per request.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Re-reads every key (files included). On error the keys in force stay, a warning is
    /// logged and the error returned.
    pub fn reload(&self) -> Result<(), String> {
        let set = match KeySet::load(&self.configs) {
            Ok(set) => set,
            Err(e) => {
                tracing::warn!(error = %e, "jwt keys reload failed; keeping the current keys");
                return Err(e);
            }
        };
        tracing::info!(count = set.len(), kids = ?set.kids(), "jwt keys reloaded");
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = Arc::new(set);
        // Bumped under the write lock, so `current()` never pairs a generation with another
        // generation's set.
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Starts a thread that checks the key files' mtime, size and inode every `period` and
    /// reloads when any changed. It stops by itself once the last `Arc<JwtKeys>` is dropped.
    pub fn spawn_file_watcher(
        self: &Arc<Self>,
        period: Duration,
    ) -> std::io::Result<JoinHandle<()>> {
        let keys = Arc::downgrade(self);
        let mut seen = self.fingerprint();
        std::thread::Builder::new()
            .name("jwt-key-watch".to_owned())
            .spawn(move || loop {
                std::thread::sleep(period);
                let Some(keys) = keys.upgrade() else {
                    return;
                };
                keys.poll_files(&mut seen);
            })
    }

    /// One watcher step: reloads if the files differ from `seen`, which is then updated
    /// whatever the outcome, so a broken file is reported once, not every period, and the
    /// next change to it is tried again. Returns whether a reload was attempted.
    pub(super) fn poll_files(&self, seen: &mut Fingerprint) -> bool {
        let now = self.fingerprint();
        if now == *seen {
            return false;
        }
        *seen = now;
        // The error is already logged by `reload`.
        let _ = self.reload();
        true
    }

    pub(super) fn fingerprint(&self) -> Fingerprint {
        self.configs
            .iter()
            .filter_map(file_of)
            .map(|path| {
                let meta = std::fs::metadata(path).ok()?;
                let mtime_ns = meta
                    .mtime()
                    .saturating_mul(1_000_000_000)
                    .saturating_add(meta.mtime_nsec());
                Some((mtime_ns, meta.size(), meta.ino()))
            })
            .collect()
    }
}
