//! The owner shard's group commit of the durable log: publishes appended to a partition's log
//! wait here until their records are written (and, with `storage.fsync = "batch"`, synced);
//! then, in the order they were appended, their events go to every shard and their publishers
//! get their ids. An event is never delivered before it is durable, so no client ever holds an
//! id that a crash could give to another event.
//!
//! One task per shard ([`run`]) takes everything queued since its last turn: one write per
//! partition touched, then one `fdatasync` per file, shared by every publish in the turn.
//! Publishes that arrive while it writes wait for its next turn (their records were encoded
//! at once; only the I/O is batched). A failed write or sync refuses the publishes of that
//! partition (503) and gives their offsets out again; nothing of them was acknowledged or
//! delivered.
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use glommio::io::DmaFile;

use crate::broker::durable::partition_log::{FlushJob, Flushed, LogSettings, PartitionLog};
use crate::broker::{FramedEvent, PartitionKey, PublishError};
use crate::config::FsyncPolicy;
use crate::shard::context::{ReplyTo, ShardContext};
use crate::telemetry::ShardMetrics;

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

    pub fn index_interval(&self) -> u32 {
        self.settings.index_interval
    }

    /// Nothing queued and no commit running (a drain waits for this before fencing).
    pub fn is_idle(&self) -> bool {
        !self.busy.get() && self.queue.borrow().is_empty()
    }

    /// Delete the whole segments `[storage]` retention no longer keeps, in every partition
    /// this shard owns; returns how many files were removed.
    pub async fn expire(&self, max_bytes: u64, max_age_ms: u64) -> usize {
        let min_timestamp = (max_age_ms > 0).then(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            now - max_age_ms as i64
        });
        let doomed: Vec<std::path::PathBuf> = self
            .logs
            .borrow_mut()
            .values_mut()
            .flat_map(|l| l.expire(max_bytes, min_timestamp))
            .collect();
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
/// answer it.
pub async fn run(ctx: Rc<ShardContext>) {
    let Some(log) = ctx.durable.as_ref() else {
        return;
    };
    if log.fsync == FsyncPolicy::Interval {
        glommio::spawn_local(sync_every(ctx.clone())).detach();
    }
    loop {
        log.wait_for_work().await;
        log.busy.set(true);
        commit_turn(&ctx, log).await;
        if log.sealed_since_expire.replace(false) {
            // A segment was sealed: retention may delete old ones now, not at its next tick.
            glommio::spawn_local(expire_now(ctx.clone())).detach();
        }
        log.busy.set(false);
        if ctx.shutdown.is_triggered() && log.queue.borrow().is_empty() {
            // Nothing more can be appended (appends are refused once shutdown is requested).
            return;
        }
    }
}

/// One group commit.
async fn commit_turn(ctx: &ShardContext, log: &DurableLog) {
    let metrics = ctx.metrics();
    let batch: Vec<Pending> = log.queue.borrow_mut().drain(..).collect();
    let mut keys: Vec<PartitionKey> = Vec::new();
    for p in &batch {
        if !keys.contains(&p.key) {
            keys.push(p.key.clone());
        }
    }
    // Write each partition's records (concurrently: one io_uring submission each).
    let jobs: Vec<_> = {
        let mut logs = log.logs.borrow_mut();
        keys.iter()
            .filter_map(|k| {
                logs.get_mut(k)
                    .and_then(PartitionLog::begin_flush)
                    .map(|job| (k.clone(), job))
            })
            .collect()
    };
    let mut failed: HashMap<PartitionKey, String> = HashMap::new();
    let mut files: Vec<(PartitionKey, Rc<DmaFile>)> = Vec::new();
    for (key, (records, bytes, outcome)) in run_jobs(jobs).await {
        match outcome {
            Ok(flushed) => {
                files.push((key.clone(), flushed.file().clone()));
                let finished = log
                    .logs
                    .borrow_mut()
                    .get_mut(&key)
                    .map(|l| l.finish_flush(Ok(flushed)));
                if let Some(Err(e)) = finished {
                    failed.insert(key, e.to_string());
                } else {
                    if let Some(Ok(true)) = finished {
                        log.sealed_since_expire.set(true);
                    }
                    ShardMetrics::add(&metrics.storage_flushes_total, 1);
                    ShardMetrics::add(&metrics.storage_records_written_total, records as u64);
                    ShardMetrics::add(&metrics.storage_bytes_written_total, bytes as u64);
                }
            }
            Err(e) => {
                failed.insert(key, e.to_string());
            }
        }
    }
    match log.fsync {
        FsyncPolicy::Batch => {
            for (key, file) in &files {
                if failed.contains_key(key) {
                    continue;
                }
                let started = Instant::now();
                let synced = file.fdatasync().await;
                ShardMetrics::add(&metrics.storage_fsyncs_total, 1);
                ShardMetrics::add(
                    &metrics.storage_fsync_micros_total,
                    started.elapsed().as_micros() as u64,
                );
                if let Err(e) = synced {
                    failed.insert(key.clone(), e.to_string());
                }
            }
        }
        FsyncPolicy::Interval => {
            let mut unsynced = log.unsynced.borrow_mut();
            for (_, file) in files {
                if !unsynced.iter().any(|f| Rc::ptr_eq(f, &file)) {
                    unsynced.push(file);
                }
            }
        }
    }
    if !failed.is_empty() {
        refuse_failed(ctx, log, &failed, batch);
        return;
    }
    ShardMetrics::set(&metrics.storage_failing, 0);
    for p in batch {
        for event in p.framed {
            ctx.broadcast(event);
        }
        ctx.reply(p.reply, Ok(p.ids));
    }
}

/// A flush's record and byte counts and its outcome.
type JobOutcome = (usize, usize, std::io::Result<Flushed>);

/// Run flush jobs concurrently (a task each: their writes are in flight together).
async fn run_jobs(jobs: Vec<(PartitionKey, FlushJob)>) -> Vec<(PartitionKey, JobOutcome)> {
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|(key, job)| {
            let (records, bytes) = (job.record_count(), job.byte_count());
            let task = glommio::spawn_local(job.run());
            (key, records, bytes, task)
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for (key, records, bytes, task) in tasks {
        out.push((key, (records, bytes, task.await)));
    }
    out
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

/// Apply `[storage]` retention: after each commit that sealed a segment is not needed (a
/// timer is enough at these sizes), every quarter of `retention_ms` (between 100 ms and 10 s).
pub async fn retention_loop(ctx: Rc<ShardContext>) {
    let Some(log) = ctx.durable.as_ref() else {
        return;
    };
    let st = &ctx.config().storage;
    let (max_bytes, max_age) = (st.retention_bytes, st.retention_ms);
    if max_bytes == 0 && max_age == 0 {
        return;
    }
    let every = Duration::from_millis(if max_age == 0 {
        10_000
    } else {
        (max_age / 4).clamp(100, 10_000)
    });
    while !ctx.shutdown.is_triggered() {
        glommio::timer::sleep(every).await;
        let removed = log.expire(max_bytes, max_age).await;
        if removed > 0 {
            tracing::info!(
                shard = ctx.id,
                files = removed,
                "retention removed old segments"
            );
        }
    }
}

/// Apply retention once (after a segment was sealed).
async fn expire_now(ctx: Rc<ShardContext>) {
    let Some(log) = ctx.durable.as_ref() else {
        return;
    };
    let st = &ctx.config().storage;
    if st.retention_bytes == 0 && st.retention_ms == 0 {
        return;
    }
    let removed = log.expire(st.retention_bytes, st.retention_ms).await;
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
