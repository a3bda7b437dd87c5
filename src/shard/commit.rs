//! The owner shard's group commit of the durable log: publishes appended to a partition's log
//! wait here until their records are written (and, with `storage.fsync = "batch"`, synced);
//! then, in the order they were appended, their events go to every shard and their publishers
//! get their ids. An event is never delivered before it is durable, so no client ever holds an
//! id that a crash could give to another event.
//!
//! One task per shard ([`run`]) takes everything queued since its last turn: one write per
//! partition touched, then one `fdatasync` per file, shared by every publish in the turn
//! ([`turn`]). Publishes that arrive while it writes wait for its next turn (their records were
//! encoded at once; only the I/O is batched), which starts as soon as the write is done, before
//! the finished turn is delivered and answered. A failed write or sync refuses the publishes of that
//! partition (503) and gives their offsets out again; nothing of them was acknowledged or
//! delivered.
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use glommio::io::DmaFile;

use crate::broker::durable::partition_log::{create_empty_segment, LogSettings, PartitionLog};
use crate::broker::{FramedEvent, PartitionKey, PublishError};
use crate::config::FsyncPolicy;
use crate::shard::context::{ReplyTo, ShardContext};
use crate::telemetry::ShardMetrics;

mod turn;

/// A publish whose events wait for the disk.
struct Pending {
    key: PartitionKey,
    framed: Vec<FramedEvent>,
    ids: Vec<String>,
    reply: ReplyTo,
    /// The partition's first offset this publish took (given out again if it fails).
    first_offset: Option<u64>,
}

/// The durable log of the partitions one shard owns, and its commit queue.
pub struct DurableLog {
    root: std::path::PathBuf,
    settings: LogSettings,
    fsync: FsyncPolicy,
    logs: RefCell<HashMap<PartitionKey, PartitionLog>>,
    queue: RefCell<VecDeque<Pending>>,
    /// Files written since their last sync (`interval` mode syncs them on a timer).
    unsynced: RefCell<Vec<Rc<DmaFile>>>,
    waker: RefCell<Option<Waker>>,
    /// The commit task is writing: a drain waits for it.
    busy: Cell<bool>,
    /// A segment was sealed since retention last looked.
    sealed_since_expire: Cell<bool>,
}

impl DurableLog {
    pub fn new(
        root: std::path::PathBuf,
        settings: LogSettings,
        fsync: FsyncPolicy,
        logs: HashMap<PartitionKey, PartitionLog>,
    ) -> Self {
        Self {
            root,
            settings,
            fsync,
            logs: RefCell::new(logs),
            queue: RefCell::new(VecDeque::new()),
            unsynced: RefCell::new(Vec::new()),
            waker: RefCell::new(None),
            busy: Cell::new(false),
            sealed_since_expire: Cell::new(false),
        }
    }

    /// Encode the new events of a publish into `key`'s log and queue the publish for the next
    /// commit. `records` gives each new event's record; an encoding error refuses the whole
    /// publish (nothing of it is queued).
    pub fn append<'a>(
        &self,
        key: &PartitionKey,
        records: impl IntoIterator<Item = crate::broker::log::RecordRef<'a>>,
        framed: Vec<FramedEvent>,
        ids: Vec<String>,
        reply: ReplyTo,
    ) -> Result<(), PublishError> {
        let mut logs = self.logs.borrow_mut();
        let log = logs.entry(key.clone()).or_insert_with(|| {
            let dir = crate::broker::durable::data_dir::partition_dir(
                &self.root,
                &key.topic,
                key.partition,
            );
            PartitionLog::new(dir, self.settings)
        });
        let mark = log.mark();
        for record in records {
            if let Err(e) = log.append(&record) {
                log.rewind(mark);
                return Err(PublishError::Invalid(e.to_string()));
            }
        }
        self.queue.borrow_mut().push_back(Pending {
            key: key.clone(),
            first_offset: framed.first().map(|e| e.offset),
            framed,
            ids,
            reply,
        });
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
        Ok(())
    }

    /// The data directory (every shard reads partitions back from it).
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// `interval` mode: `file` was written and waits for the sync timer.
    fn mark_unsynced(&self, file: Rc<DmaFile>) {
        let mut unsynced = self.unsynced.borrow_mut();
        if !unsynced.iter().any(|f| Rc::ptr_eq(f, &file)) {
            unsynced.push(file);
        }
    }

    pub fn index_interval(&self) -> u32 {
        self.settings.index_interval
    }

    /// Nothing queued and no commit running (a drain waits for this before fencing).
    pub fn is_idle(&self) -> bool {
        !self.busy.get() && self.queue.borrow().is_empty()
    }

    /// Delete the whole segments `[storage]` retention no longer keeps, in every partition
    /// this shard owns; returns how many files were removed.
    pub async fn expire(&self, retention: &Retention) -> usize {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut doomed: Vec<std::path::PathBuf> = Vec::new();
        let mut quiet = Vec::new();
        for (key, l) in self.logs.borrow_mut().iter_mut() {
            let (max_bytes, max_age_ms) = retention.for_topic(&key.topic);
            let min_timestamp = (max_age_ms > 0).then(|| now - max_age_ms as i64);
            doomed.extend(l.expire(max_bytes, min_timestamp));
            if let Some(min) = min_timestamp {
                if l.quiet_expired_segment(min).is_some() {
                    quiet.push((key.clone(), min));
                }
            }
        }
        for (key, min) in quiet {
            doomed.extend(self.retire_quiet_segment(&key, min).await);
        }
        let mut removed = 0;
        for path in doomed {
            match glommio::io::remove(&path)
                .await
                .map_err(std::io::Error::from)
            {
                Ok(()) => removed += 1,
                // An index may never have been written (it is a cache).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "retention: cannot remove")
                }
            }
        }
        removed
    }

    /// Replace the quiet, expired segment of `key` with an empty one at its next offset; the
    /// old segment's files to remove. Holds the partition's files lock throughout, so no flush
    /// writes meanwhile; gives up, removing the new file, when an append came in.
    async fn retire_quiet_segment(&self, key: &PartitionKey, min: i64) -> Vec<std::path::PathBuf> {
        let Some(lock) = self.logs.borrow().get(key).map(PartitionLog::files_lock) else {
            return Vec::new();
        };
        let Ok(_files) = lock.acquire_static_permit(1).await else {
            return Vec::new();
        };
        let quiet = |logs: &HashMap<PartitionKey, PartitionLog>| {
            logs.get(key)
                .and_then(|l| Some((l.dir().to_owned(), l.quiet_expired_segment(min)?)))
        };
        let Some((dir, (old, next))) = quiet(&self.logs.borrow()) else {
            return Vec::new();
        };
        // The successor first: its name keeps the next offset across a restart.
        if let Err(e) = create_empty_segment(&dir, next).await {
            tracing::warn!(dir = %dir.display(), error = %e, "retention: cannot start a new segment");
            return Vec::new();
        }
        let retired = {
            let mut logs = self.logs.borrow_mut();
            match (quiet(&logs), logs.get_mut(key)) {
                (Some((_, found)), Some(l)) if found == (old, next) => Some(l.retired(old, next)),
                _ => None,
            }
        };
        if let Some(files) = retired {
            return files;
        }
        // Not quiet any more: the new file must go before any flush can run (this still holds
        // the lock), or it would shadow the records about to follow in the old segment.
        let path = dir.join(crate::broker::log::log_name(next));
        if let Err(e) = glommio::io::remove(&path).await {
            tracing::warn!(path = %path.display(), error = %e, "retention: cannot remove an unused segment");
        }
        Vec::new()
    }

    fn wait_for_work(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx: &mut Context<'_>| {
            if self.queue.borrow().is_empty() {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
    }
}

/// The commit task: until the shard stops, write and sync what is queued, then deliver and
/// answer it. The next group's I/O starts as soon as the previous group's is done, before
/// that group is delivered and answered, so the disk does not wait for the shard's CPU.
pub async fn run(ctx: Rc<ShardContext>) {
    let Some(log) = ctx.durable.as_ref() else {
        return;
    };
    if log.fsync == FsyncPolicy::Interval {
        glommio::spawn_local(sync_every(ctx.clone())).detach();
    }
    let mut next: Option<turn::Turn> = None;
    loop {
        let current = match next.take() {
            Some(t) => t,
            None => {
                log.wait_for_work().await;
                log.busy.set(true);
                match turn::start(log) {
                    Some(t) => t,
                    None => continue,
                }
            }
        };
        let settled = turn::finish(&ctx, log, current).await;
        next = turn::start(log);
        for p in settled {
            for event in p.framed {
                ctx.broadcast(event);
            }
            ctx.reply(p.reply, Ok(p.ids));
        }
        if log.sealed_since_expire.replace(false) {
            // A segment was sealed: retention may delete old ones now, not at its next tick.
            glommio::spawn_local(expire_now(ctx.clone())).detach();
        }
        if next.is_none() {
            log.busy.set(false);
            if ctx.shutdown.is_triggered() && log.queue.borrow().is_empty() {
                // Nothing more can be appended (appends are refused once shutdown is requested).
                return;
            }
        }
    }
}

/// A write or sync failed for the partitions in `failed`: refuse every publish of theirs that
/// is not durable (this turn's and any queued since, whose records came after), drop their
/// records, and give their offsets out again.
fn refuse_failed(
    ctx: &ShardContext,
    log: &DurableLog,
    failed: &HashMap<PartitionKey, String>,
    batch: Vec<Pending>,
) {
    let metrics = ctx.metrics();
    ShardMetrics::add(&metrics.storage_errors_total, failed.len() as u64);
    ShardMetrics::set(&metrics.storage_failing, 1);
    for (key, reason) in failed {
        tracing::error!(
            shard = ctx.id,
            topic = %key.topic,
            partition = key.partition,
            error = %reason,
            "durable log write failed; refusing its publishes with 503"
        );
        if let Some(l) = log.logs.borrow_mut().get_mut(key) {
            l.discard_pending();
        }
    }
    let later: Vec<Pending> = {
        let mut queue = log.queue.borrow_mut();
        let (theirs, others): (Vec<_>, Vec<_>) =
            queue.drain(..).partition(|p| failed.contains_key(&p.key));
        queue.extend(others);
        theirs
    };
    let mut rollback: HashMap<PartitionKey, u64> = HashMap::new();
    for p in batch.into_iter().chain(later) {
        match failed.get(&p.key) {
            Some(reason) => {
                if let Some(first) = p.first_offset {
                    let at = rollback.entry(p.key.clone()).or_insert(first);
                    *at = (*at).min(first);
                }
                ctx.reply(p.reply, Err(PublishError::Storage(reason.clone())));
            }
            None => {
                for event in p.framed {
                    ctx.broadcast(event);
                }
                ctx.reply(p.reply, Ok(p.ids));
            }
        }
    }
    for (key, first) in rollback {
        ctx.rollback_offsets(&key, first);
    }
}

/// `storage.fsync = "interval"`: sync every file written since the last sync, every
/// `storage.fsync_interval_ms`.
async fn sync_every(ctx: Rc<ShardContext>) {
    let Some(log) = ctx.durable.as_ref() else {
        return;
    };
    let every = Duration::from_millis(ctx.config().storage.fsync_interval_ms);
    loop {
        glommio::timer::sleep(every).await;
        let files: Vec<Rc<DmaFile>> = log.unsynced.borrow_mut().drain(..).collect();
        for file in files {
            let started = Instant::now();
            let synced = file.fdatasync().await;
            let m = ctx.metrics();
            ShardMetrics::add(&m.storage_fsyncs_total, 1);
            ShardMetrics::add(
                &m.storage_fsync_micros_total,
                started.elapsed().as_micros() as u64,
            );
            if let Err(e) = synced {
                // Acknowledged already: all that can be done is to say so loudly.
                ShardMetrics::add(&m.storage_errors_total, 1);
                ShardMetrics::set(&m.storage_failing, 1);
                tracing::error!(shard = ctx.id, error = %e, "durable log sync failed");
            }
        }
        if ctx.shutdown.is_triggered() && log.is_idle() && log.unsynced.borrow().is_empty() {
            return;
        }
    }
}

/// Retention limits per topic: `[storage]`'s, or a `topic_retention` entry's.
pub struct Retention {
    bytes: u64,
    ms: u64,
    overrides: Vec<(crate::policy::acl::Acl, u64, u64)>,
}

impl Retention {
    pub fn from_config(st: &crate::config::StorageConfig) -> Self {
        let overrides = st
            .topic_retention
            .iter()
            .filter_map(|r| {
                // Validated at start; an entry that does not parse matches nothing.
                let acl = crate::policy::acl::Acl::parse(&r.topics).ok()?;
                Some((
                    acl,
                    r.retention_bytes.unwrap_or(st.retention_bytes),
                    r.retention_ms.unwrap_or(st.retention_ms),
                ))
            })
            .collect();
        Self {
            bytes: st.retention_bytes,
            ms: st.retention_ms,
            overrides,
        }
    }

    /// `(max bytes, max age ms)` for `topic`; 0 means no limit.
    pub fn for_topic(&self, topic: &str) -> (u64, u64) {
        self.overrides
            .iter()
            .find(|(acl, _, _)| acl.allows(topic, None))
            .map_or((self.bytes, self.ms), |&(_, b, ms)| (b, ms))
    }

    /// Whether any topic has a limit.
    fn any(&self) -> bool {
        self.bytes > 0 || self.ms > 0 || self.overrides.iter().any(|&(_, b, ms)| b > 0 || ms > 0)
    }

    /// How often to look: a quarter of the shortest age limit, between 100 ms and 10 s.
    fn period(&self) -> Duration {
        let shortest = std::iter::once(self.ms)
            .chain(self.overrides.iter().map(|&(_, _, ms)| ms))
            .filter(|&ms| ms > 0)
            .min();
        Duration::from_millis(shortest.map_or(10_000, |ms| (ms / 4).clamp(100, 10_000)))
    }
}

/// Apply `[storage]` retention on a timer (and after each sealed segment, [`expire_now`]).
pub async fn retention_loop(ctx: Rc<ShardContext>) {
    let retention = Retention::from_config(&ctx.config().storage);
    if ctx.durable.is_none() || !retention.any() {
        return;
    }
    let every = retention.period();
    while !ctx.shutdown.is_triggered() {
        glommio::timer::sleep(every).await;
        expire_once(&ctx, &retention).await;
    }
}

/// Apply retention once (after a segment was sealed).
async fn expire_now(ctx: Rc<ShardContext>) {
    let retention = Retention::from_config(&ctx.config().storage);
    if retention.any() {
        expire_once(&ctx, &retention).await;
    }
}

async fn expire_once(ctx: &ShardContext, retention: &Retention) {
    let Some(log) = ctx.durable.as_ref() else {
        return;
    };
    let removed = log.expire(retention).await;
    if removed > 0 {
        tracing::info!(
            shard = ctx.id,
            files = removed,
            "retention removed old segments"
        );
    }
}

/// A future that is ready once `log` is idle (polled every millisecond: drains are rare).
pub async fn idle(log: &DurableLog) {
    while !log.is_idle() {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{StorageConfig, TopicRetention};

    #[test]
    fn the_first_matching_topic_retention_applies_and_the_rest_keep_the_defaults() {
        let st = StorageConfig {
            retention_bytes: 1000,
            retention_ms: 60_000,
            topic_retention: vec![
                TopicRetention {
                    topics: vec!["audit.**".into()],
                    retention_bytes: Some(0),
                    retention_ms: Some(0),
                },
                TopicRetention {
                    topics: vec!["audit.tmp".into(), "scratch.*".into()],
                    retention_bytes: None,
                    retention_ms: Some(400),
                },
            ],
            ..StorageConfig::default()
        };
        let r = Retention::from_config(&st);
        assert_eq!(r.for_topic("audit.tmp"), (0, 0), "first match wins");
        assert_eq!(r.for_topic("scratch.x"), (1000, 400));
        assert_eq!(r.for_topic("orders"), (1000, 60_000));
        assert_eq!(r.period(), Duration::from_millis(100));
        assert!(r.any());
    }
}
