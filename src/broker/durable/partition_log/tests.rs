//! The writer against real files on a glommio executor: appends across a segment roll, what
//! recovery then finds, reopening the last segment, and rewinding a refused publish.
use super::*;
use crate::broker::durable::data_dir::DataDir;
use crate::broker::durable::recovery::{recover, TailLimits};

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("sluicegate-partlog-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn record(offset: u64, data: &str) -> (u64, String) {
    (offset, data.to_owned())
}

fn append(log: &mut PartitionLog, (offset, data): &(u64, String)) {
    let headers = Vec::new();
    let rec = RecordRef {
        offset: *offset,
        timestamp_ms: 1,
        event_type: None,
        idempotency_key: None,
        key: None,
        headers: &headers,
        data: data.as_bytes(),
    };
    log.append(&rec).expect("append");
}

async fn flush(log: &mut PartitionLog) {
    let job = log.begin_flush().expect("something to flush");
    let done = job.run().await;
    log.finish_flush(done).expect("flushed");
}

const SETTINGS: LogSettings = LogSettings {
    segment_bytes: 64 * 1024,
    index_interval: 1024,
    block_bytes: 4096,
};

const TAIL: TailLimits = TailLimits {
    events: 10_000,
    bytes: 1 << 30,
    whole: |_| false,
};

#[test]
fn appends_roll_into_new_segments_and_recovery_finds_every_record() {
    let root = scratch("roll");
    let data = DataDir::open(&root, 1).expect("data dir");
    let dir = crate::broker::durable::data_dir::partition_dir(data.path(), "t", 0);
    let pad = "p".repeat(1000);
    glommio::LocalExecutor::default().run(async {
        // As the gateway does: glommio's polled-I/O probe must see a non-empty file first.
        crate::broker::durable::data_dir::probe_direct_io(data.path()).await;
        let mut log = PartitionLog::new(dir.clone(), SETTINGS);
        // 200 records of ~1 KB in flushes of 10: past three 64 KiB segments.
        for batch in 0..20u64 {
            for i in 0..10 {
                append(&mut log, &record(batch * 10 + i, &pad));
            }
            flush(&mut log).await;
        }
        // A refused publish: its records are dropped before they are written.
        let mark = log.mark();
        append(&mut log, &record(200, "refused"));
        log.rewind(mark);
        assert!(log.begin_flush().is_none(), "nothing left to write");
        assert!(
            log.segments().count() >= 3,
            "rolled: {}",
            log.segments().count()
        );
    });
    let found = recover(&data, TAIL, 1024).expect("recover");
    let p = &found.partitions[0];
    assert_eq!(p.next_offset, 200);
    assert_eq!(p.tail.len(), 200);
    assert_eq!(found.damaged_bytes, 0);
    assert!(p.segments.len() >= 3);
    assert!(
        p.segments[0].index.entries().len() > 10,
        "sealed segments are indexed"
    );

    // Reopen: appends continue in the last segment, after its last record.
    glommio::LocalExecutor::default().run(async {
        let mut log = PartitionLog::recovered(p, SETTINGS);
        append(&mut log, &record(200, "after restart"));
        flush(&mut log).await;
    });
    let again = recover(&data, TAIL, 1024).expect("recover again");
    let q = &again.partitions[0];
    assert_eq!(q.next_offset, 201);
    assert_eq!(q.segments.len(), p.segments.len(), "no new segment");
    assert_eq!(&q.tail[200].data[..], b"after restart");
    drop(data);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn writes_start_and_end_on_the_filesystem_block_and_the_tail_survives_reopening() {
    // 16 KiB: larger than any device's direct-I/O alignment, so the log's own alignment (not
    // glommio's) decides where each write starts and ends.
    let settings = LogSettings {
        block_bytes: 16 * 1024,
        ..SETTINGS
    };
    let root = scratch("block");
    let data = DataDir::open(&root, 1).expect("data dir");
    let dir = crate::broker::durable::data_dir::partition_dir(data.path(), "t", 0);
    let file = dir.join(crate::broker::log::log_name(0));
    let mut sizes = Vec::new();
    glommio::LocalExecutor::default().run(async {
        crate::broker::durable::data_dir::probe_direct_io(data.path()).await;
        let mut log = PartitionLog::new(dir.clone(), settings);
        // Flushes of odd sizes, so the tail block is rewritten partly filled many times.
        for offset in 0..40u64 {
            append(
                &mut log,
                &record(offset, &"x".repeat(300 + offset as usize * 37)),
            );
            flush(&mut log).await;
            sizes.push(std::fs::metadata(&file).expect("segment").len());
        }
    });
    assert!(
        sizes.iter().all(|s| s % settings.block_bytes == 0),
        "every write ends on a block: {sizes:?}"
    );
    let found = recover(&data, TAIL, 1024).expect("recover");
    let p = &found.partitions[0];
    assert_eq!(p.next_offset, 40);
    assert_eq!(
        found.damaged_bytes, 0,
        "the zeroes after the last record are not damage"
    );
    glommio::LocalExecutor::default().run(async {
        let mut log = PartitionLog::recovered(p, settings);
        append(&mut log, &record(40, "after restart"));
        flush(&mut log).await;
    });
    let again = recover(&data, TAIL, 1024).expect("recover again");
    let q = &again.partitions[0];
    assert_eq!(q.next_offset, 41);
    for (i, r) in q.tail.iter().enumerate().take(40) {
        assert_eq!(r.data.len(), 300 + i * 37, "record {i} intact");
    }
    assert_eq!(&q.tail[40].data[..], b"after restart");
    drop(data);
    let _ = std::fs::remove_dir_all(&root);
}
