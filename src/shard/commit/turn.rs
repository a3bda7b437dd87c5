//! One group commit of the shard's durable log, split in two so the commit task can start the
//! next one's I/O the moment this one's is done, before it answers this one's publishers.
//!
//! [`start`] (synchronous) takes every queued publish and starts one write per touched
//! partition (with `fsync = "batch"`, followed by its `fdatasync`), each in its own task so
//! they are in flight together. [`finish`] waits for them and settles the turn: the publishes
//! to answer, or, after a failure, refuses the failed partitions' publishes itself.
//!
//! A partition never has two writes in flight: the next turn starts only after [`finish`], so
//! a write that rewrites the partial tail block cannot race the write that put it there.
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::io::DmaFile;
use glommio::Task;

use super::{refuse_failed, DurableLog, Pending};
use crate::broker::durable::partition_log::{FlushJob, Flushed, PartitionLog};
use crate::broker::PartitionKey;
use crate::config::FsyncPolicy;
use crate::shard::context::ShardContext;
use crate::telemetry::ShardMetrics;

/// What one partition's I/O of a turn did.
struct PartitionIo {
    records: usize,
    bytes: usize,
    written: std::io::Result<Flushed>,
    /// `fsync = "batch"`: the sync after a successful write, and how long it took.
    synced: Option<(std::io::Result<()>, Duration)>,
}

/// A group commit whose I/O is in flight.
pub(super) struct Turn {
    batch: Vec<Pending>,
    io: Vec<(PartitionKey, Task<PartitionIo>)>,
}

/// Take everything queued and start writing it; `None` when nothing is queued.
pub(super) fn start(log: &DurableLog) -> Option<Turn> {
    let batch: Vec<Pending> = log.queue.borrow_mut().drain(..).collect();
    if batch.is_empty() {
        return None;
    }
    let mut keys: Vec<&PartitionKey> = Vec::new();
    for p in &batch {
        if !keys.contains(&&p.key) {
            keys.push(&p.key);
        }
    }
    let jobs: Vec<(PartitionKey, FlushJob)> = {
        let mut logs = log.logs.borrow_mut();
        keys.into_iter()
            .filter_map(|k| {
                logs.get_mut(k)
                    .and_then(PartitionLog::begin_flush)
                    .map(|job| (k.clone(), job))
            })
            .collect()
    };
    let sync = log.fsync == FsyncPolicy::Batch;
    let io = jobs
        .into_iter()
        .map(|(key, job)| {
            // A task of its own, so the I/O goes on while the commit task answers the previous
            // turn (and the partitions' writes are in flight together).
            (key, glommio::spawn_local(write(job, sync)))
        })
        .collect();
    Some(Turn { batch, io })
}

async fn write(job: FlushJob, sync: bool) -> PartitionIo {
    let (records, bytes) = (job.record_count(), job.byte_count());
    let written = job.run().await;
    let synced = match (&written, sync) {
        (Ok(flushed), true) => {
            let file: Rc<DmaFile> = flushed.file().clone();
            let started = Instant::now();
            let result = file.fdatasync().await.map_err(std::io::Error::from);
            Some((result, started.elapsed()))
        }
        _ => None,
    };
    PartitionIo {
        records,
        bytes,
        written,
        synced,
    }
}

/// Wait for a turn's I/O and record it in the logs. Returns the publishes to deliver and
/// answer, in append order; a failed partition's publishes (and those queued since) are
/// refused here, and then nothing is returned (every publish of the turn has been answered).
pub(super) async fn finish(ctx: &ShardContext, log: &DurableLog, turn: Turn) -> Vec<Pending> {
    let metrics = ctx.metrics();
    let mut failed: HashMap<PartitionKey, String> = HashMap::new();
    for (key, task) in turn.io {
        let io = task.await;
        let outcome = match io.written {
            Ok(flushed) => {
                let file = flushed.file().clone();
                let finished = log
                    .logs
                    .borrow_mut()
                    .get_mut(&key)
                    .map(|l| l.finish_flush(Ok(flushed)));
                match finished {
                    Some(Err(e)) => Err(e.to_string()),
                    sealed => {
                        if let Some(Ok(true)) = sealed {
                            log.sealed_since_expire.set(true);
                        }
                        ShardMetrics::add(&metrics.storage_flushes_total, 1);
                        ShardMetrics::add(
                            &metrics.storage_records_written_total,
                            io.records as u64,
                        );
                        ShardMetrics::add(&metrics.storage_bytes_written_total, io.bytes as u64);
                        Ok(file)
                    }
                }
            }
            Err(e) => {
                if let Some(l) = log.logs.borrow_mut().get_mut(&key) {
                    let _ = l.finish_flush(Err(std::io::Error::other("write failed")));
                }
                Err(e.to_string())
            }
        };
        let file = match outcome {
            Ok(file) => file,
            Err(reason) => {
                failed.insert(key, reason);
                continue;
            }
        };
        match io.synced {
            Some((synced, took)) => {
                ShardMetrics::add(&metrics.storage_fsyncs_total, 1);
                ShardMetrics::add(&metrics.storage_fsync_micros_total, took.as_micros() as u64);
                if let Err(e) = synced {
                    failed.insert(key, e.to_string());
                }
            }
            // `interval`: the timer syncs it.
            None => log.mark_unsynced(file),
        }
    }
    if !failed.is_empty() {
        refuse_failed(ctx, log, &failed, turn.batch);
        return Vec::new();
    }
    ShardMetrics::set(&metrics.storage_failing, 0);
    turn.batch
}
