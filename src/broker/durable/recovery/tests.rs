//! Recovery against real files: torn tails, flipped bytes, lost indexes, several segments.
use super::*;
use crate::broker::log::{encode, RecordRef};
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("sluicegate-recovery-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn record(offset: u64, data: &str, out: &mut Vec<u8>) -> usize {
    let headers = Vec::new();
    let rec = RecordRef {
        offset,
        timestamp_ms: 1_000 + offset as i64,
        event_type: Some("t"),
        idempotency_key: None,
        key: None,
        headers: &headers,
        data: data.as_bytes(),
    };
    encode(&rec, out).expect("encode")
}

/// A segment of records `offsets` (data `e{offset}`); the start position of each.
fn segment(offsets: std::ops::Range<u64>) -> (Vec<u8>, Vec<usize>) {
    let mut buf = Vec::new();
    let mut starts = Vec::new();
    for o in offsets {
        starts.push(buf.len());
        record(o, &format!("e{o}"), &mut buf);
    }
    (buf, starts)
}

const TAIL: TailLimits = TailLimits {
    events: 100,
    bytes: 1 << 20,
    whole: |_| false,
};

fn open(dir: &Path) -> (DataDir, PathBuf) {
    let data = DataDir::open(dir, 1).expect("open");
    let part = crate::broker::durable::data_dir::partition_dir(data.path(), "t", 0);
    std::fs::create_dir_all(&part).expect("mkdir");
    (data, part)
}

fn datas(p: &RecoveredPartition) -> Vec<String> {
    p.tail
        .iter()
        .map(|r| String::from_utf8_lossy(&r.data).into_owned())
        .collect()
}

#[test]
fn a_torn_tail_is_cut_at_the_last_whole_record_and_appending_continues_after_it() {
    let dir = scratch("torn");
    let (data, part) = open(&dir);
    let (mut buf, starts) = segment(0..5);
    let cut = starts[4] + 5;
    buf.truncate(cut);
    buf.extend_from_slice(&[0; 300]);
    std::fs::write(part.join(log_name(0)), &buf).expect("write");
    let out = recover(&data, TAIL, 64).expect("recover");
    let p = &out.partitions[0];
    assert_eq!(p.next_offset, 4);
    assert_eq!(datas(p), ["e0", "e1", "e2", "e3"]);
    assert_eq!(
        out.damaged_bytes, 5,
        "the torn record's bytes; zeroes are padding"
    );
    let on_disk = std::fs::metadata(part.join(log_name(0)))
        .expect("stat")
        .len();
    assert_eq!(on_disk, starts[4] as u64, "cut at the last whole record");
    assert!(part.join(index_name(0)).exists(), "index written");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_flipped_byte_loses_only_its_record() {
    let dir = scratch("flip");
    let (data, part) = open(&dir);
    let (mut buf, starts) = segment(0..6);
    buf[starts[2] + 20] ^= 0x40;
    std::fs::write(part.join(log_name(0)), &buf).expect("write");
    let out = recover(&data, TAIL, 64).expect("recover");
    let p = &out.partitions[0];
    assert_eq!(datas(p), ["e0", "e1", "e3", "e4", "e5"]);
    assert_eq!(p.next_offset, 6);
    assert_eq!(out.damaged_bytes, (starts[3] - starts[2]) as u64);
    // The file was rewritten without it: a second recovery finds nothing to drop.
    let again = recover(&data, TAIL, 64).expect("again");
    assert_eq!(again.damaged_bytes, 0);
    assert_eq!(datas(&again.partitions[0]), datas(p));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_deleted_or_damaged_index_is_rebuilt_and_segments_continue_in_order() {
    let dir = scratch("index");
    let (data, part) = open(&dir);
    let (first, _) = segment(0..40);
    let (second, _) = segment(40..50);
    std::fs::write(part.join(log_name(0)), &first).expect("write");
    std::fs::write(part.join(log_name(40)), &second).expect("write");
    let out = recover(&data, TAIL, 64).expect("recover");
    let built = std::fs::read(part.join(index_name(0))).expect("index");
    assert!(!out.partitions[0].segments[0].index.entries().is_empty());
    std::fs::remove_file(part.join(index_name(0))).expect("rm");
    std::fs::write(part.join(index_name(40)), b"garbage").expect("damage");
    let out = recover(&data, TAIL, 64).expect("again");
    assert_eq!(
        std::fs::read(part.join(index_name(0))).expect("index"),
        built
    );
    let p = &out.partitions[0];
    assert_eq!(p.segments.len(), 2);
    assert_eq!(p.next_offset, 50);
    assert_eq!(p.tail.len(), 50);
    assert_eq!(out.damaged_bytes, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_tail_keeps_the_newest_events_within_the_limits() {
    let dir = scratch("tail");
    let (data, part) = open(&dir);
    let (buf, _) = segment(0..30);
    std::fs::write(part.join(log_name(0)), &buf).expect("write");
    let limits = TailLimits {
        events: 10,
        bytes: 1 << 20,
        whole: |_| false,
    };
    let out = recover(&data, limits, 64).expect("recover");
    let p = &out.partitions[0];
    assert_eq!(p.tail.len(), 10);
    assert_eq!(p.tail[0].offset, 20);
    assert_eq!(p.segments[0].max_timestamp_ms, 1_029);
    let _ = std::fs::remove_dir_all(&dir);
}
