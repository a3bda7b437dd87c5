//! Unit and property tests of the recovery scan: clean ends, padding, torn and damaged tails,
//! offset order, and that any prefix or single-byte change of a log recovers to a prefix of it.
use super::*;
use crate::broker::log::record::{Corruption, Record};
use crate::broker::log::testing::{arb_log, bare, full, log_of};
use bytes::Bytes;
use proptest::prelude::*;

fn records_at(offsets: &[u64]) -> Vec<Record> {
    offsets.iter().map(|&o| full(o)).collect()
}

/// The records a walk over `buf` yields, owned.
fn walk(buf: &[u8], base: u64) -> Vec<Record> {
    let backing = Bytes::copy_from_slice(buf);
    Records::new(&backing, base)
        .map(|(_, r)| r.to_record(&backing))
        .collect()
}

#[test]
fn empty_and_all_zero_segments_end_cleanly() {
    let empty = scan_segment(&[], 7);
    assert_eq!(
        empty,
        ScanOutcome {
            valid_len: 0,
            records: 0,
            first_offset: None,
            last_offset: None,
            damaged_bytes: 0,
            padding_bytes: 0,
            stop: ScanStop::End,
        }
    );
    let zeroes = scan_segment(&[0; 4096], 7);
    assert_eq!((zeroes.stop, zeroes.valid_len), (ScanStop::End, 0));
    assert_eq!((zeroes.damaged_bytes, zeroes.padding_bytes), (0, 4096));
}

#[test]
fn records_then_block_padding() {
    let (mut buf, ends) = log_of(&records_at(&[10, 11, 15]));
    let valid = buf.len();
    buf.resize(valid.next_multiple_of(4096), 0);
    let out = scan_segment(&buf, 10);
    assert_eq!(out.stop, ScanStop::End);
    assert_eq!((out.valid_len, out.records), (valid, 3));
    assert_eq!((out.first_offset, out.last_offset), (Some(10), Some(15)));
    assert_eq!(out.damaged_bytes, 0);
    assert_eq!(out.padding_bytes, buf.len() - valid);
    assert_eq!(out.dropped_bytes(), buf.len() - valid);
    assert_eq!(*ends.last().expect("3 records"), valid);
}

#[test]
fn torn_tail_is_dropped_and_counted_as_damage() {
    let (buf, ends) = log_of(&records_at(&[0, 1, 2]));
    // Into the record's offset field, ending on its non-zero low byte (offset 2).
    let cut = ends[1] + 9;
    let out = scan_segment(&buf[..cut], 0);
    assert_eq!(
        out.stop,
        ScanStop::Torn {
            needed: ends[2] - ends[1]
        }
    );
    assert_eq!(
        (out.valid_len, out.records, out.last_offset),
        (ends[1], 2, Some(1))
    );
    assert_eq!((out.damaged_bytes, out.padding_bytes), (9, 0));
}

#[test]
fn partly_written_block_then_zeroes() {
    // The last record's first bytes reached the disk, the rest of its block is zeroes.
    let (good, _) = log_of(&records_at(&[0, 1]));
    let (last, _) = log_of(&records_at(&[2]));
    let mut buf = good.clone();
    buf.extend_from_slice(&last[..20]);
    buf.resize(8192, 0);
    let out = scan_segment(&buf, 0);
    assert!(matches!(
        out.stop,
        ScanStop::Corrupt(Corruption::BadCrc { .. })
    ));
    assert_eq!((out.valid_len, out.records), (good.len(), 2));
    // Damage up to the last non-zero byte (the written part of the record), padding after.
    let damaged = last[..20].iter().rposition(|&b| b != 0).expect("non-zero") + 1;
    assert_eq!(out.damaged_bytes, damaged);
    assert_eq!(out.padding_bytes, 8192 - good.len() - damaged);
}

#[test]
fn damage_in_the_middle_drops_everything_after_it() {
    let (mut buf, ends) = log_of(&records_at(&[0, 1, 2, 3]));
    buf[ends[0] + 30] ^= 0x10;
    let out = scan_segment(&buf, 0);
    assert!(matches!(
        out.stop,
        ScanStop::Corrupt(Corruption::BadCrc { .. })
    ));
    assert_eq!((out.valid_len, out.records), (ends[0], 1));
    assert_eq!(out.damaged_bytes, buf.len() - ends[0]);
    // A zeroed hole in the middle is damage too (records follow it), not padding.
    let (mut buf, ends) = log_of(&records_at(&[0, 1, 2]));
    buf[ends[0]..ends[1]].fill(0);
    let out = scan_segment(&buf, 0);
    assert_eq!(out.stop, ScanStop::Corrupt(Corruption::ZeroLength));
    assert_eq!(out.damaged_bytes, buf.len() - ends[0]);
}

#[test]
fn offsets_must_increase_from_the_base_and_may_skip() {
    let skipping = scan_segment(&log_of(&records_at(&[10, 12, 100])).0, 10);
    assert_eq!((skipping.records, skipping.stop), (3, ScanStop::End));

    let (buf, ends) = log_of(&records_at(&[5, 6, 4]));
    let back = scan_segment(&buf, 5);
    assert_eq!(
        back.stop,
        ScanStop::OutOfOrder {
            offset: 4,
            previous: Some(6)
        }
    );
    assert_eq!((back.valid_len, back.records), (ends[1], 2));
    assert_eq!(back.damaged_bytes, ends[2] - ends[1]);

    let repeat = scan_segment(&log_of(&records_at(&[5, 5])).0, 5);
    assert_eq!(
        repeat.stop,
        ScanStop::OutOfOrder {
            offset: 5,
            previous: Some(5)
        }
    );
    let below = scan_segment(&log_of(&records_at(&[9, 10])).0, 10);
    assert_eq!(
        below.stop,
        ScanStop::OutOfOrder {
            offset: 9,
            previous: None
        }
    );
    assert_eq!(below.valid_len, 0);
    // u64::MAX is a last offset: nothing can follow it.
    let top = scan_segment(&log_of(&records_at(&[u64::MAX - 1, u64::MAX, 0])).0, 0);
    assert_eq!((top.records, top.last_offset), (2, Some(u64::MAX)));
}

#[test]
fn records_yield_positions_and_say_why_they_stopped() {
    let records = vec![bare(3, "a"), full(4), bare(9, "")];
    let (mut buf, ends) = log_of(&records);
    buf.extend_from_slice(&[1, 2, 3]);
    let mut iter = Records::new(&buf, 3);
    assert_eq!(iter.stop(), None);
    let positions: Vec<usize> = iter.by_ref().map(|(at, _)| at).collect();
    assert_eq!(positions, [0, ends[0], ends[1]]);
    assert_eq!(iter.position(), ends[2]);
    assert_eq!(iter.stop(), Some(ScanStop::Torn { needed: 8 }));
    assert_eq!(iter.next().map(|(at, _)| at), None, "stopped for good");
    // A reader may start at any record boundary (an index entry).
    assert_eq!(walk(&buf[ends[0]..], 4), records[1..]);
    // The callback sees what the walk yields.
    let mut seen = Vec::new();
    scan_segment_with(&buf, 3, |r, at| seen.push((r.offset, at)));
    assert_eq!(seen, [(3, 0), (4, ends[0]), (9, ends[1])]);
}

proptest! {
    /// Any prefix of a valid log recovers to exactly the records it wholly contains.
    #[test]
    fn any_prefix_recovers_the_records_it_contains(
        (base, records) in arb_log(12),
        cut in any::<prop::sample::Index>(),
    ) {
        let (buf, ends) = log_of(&records);
        let cut = cut.index(buf.len() + 1);
        let whole = ends.iter().filter(|&&end| end <= cut).count();
        let valid_len = if whole == 0 { 0 } else { ends[whole - 1] };
        let out = scan_segment(&buf[..cut], base);
        prop_assert_eq!(out.records, whole);
        prop_assert_eq!(out.valid_len, valid_len);
        prop_assert_eq!(out.dropped_bytes(), cut - valid_len);
        prop_assert_eq!(out.first_offset, records[..whole].first().map(|r| r.offset));
        prop_assert_eq!(out.last_offset, records[..whole].last().map(|r| r.offset));
        prop_assert_eq!(&walk(&buf[..cut], base), &records[..whole]);
        if cut == valid_len {
            prop_assert_eq!(out.stop, ScanStop::End);
        } else {
            // A record's first bytes can be zeroes (a length like 256), which read as padding.
            let torn_or_zeroes = matches!(out.stop, ScanStop::Torn { .. } | ScanStop::End);
            prop_assert!(torn_or_zeroes, "{:?}", out.stop);
        }
    }

    /// Changing any one byte of a valid log recovers exactly the records before the one it hit.
    #[test]
    fn one_changed_byte_recovers_the_records_before_it(
        (base, records) in arb_log(8).prop_filter("not empty", |(_, r)| !r.is_empty()),
        at in any::<prop::sample::Index>(),
        flip in 1u8..,
    ) {
        let (mut buf, ends) = log_of(&records);
        let at = at.index(buf.len());
        buf[at] ^= flip;
        let hit = ends.iter().filter(|&&end| end <= at).count();
        let out = scan_segment(&buf, base);
        prop_assert_eq!(out.records, hit);
        prop_assert_eq!(out.valid_len, if hit == 0 { 0 } else { ends[hit - 1] });
        prop_assert_eq!(&walk(&buf, base), &records[..hit]);
        prop_assert!(out.stop != ScanStop::End, "{:?}", out.stop);
    }
}

/// The fuzz seeds were written by a separate implementation of the layout (a Python script,
/// from the module doc's table), so they pin the format: encoding the same records must give
/// the same bytes, and the scan must read them back.
#[test]
fn format_matches_the_committed_seeds() {
    use std::sync::Arc;
    let seeds = |name: &str| match name {
        "three" => &include_bytes!("../../../../fuzz/seeds/log_segment/three-records")[..],
        "padded" => &include_bytes!("../../../../fuzz/seeds/log_segment/padded-block")[..],
        _ => &include_bytes!("../../../../fuzz/seeds/log_segment/torn-tail")[..],
    };
    let mut second = full(1);
    second.timestamp_ms = 1_700_000_000_001;
    second.idempotency_key = Some("idem-1".into());
    second.event_type = Some(Arc::from("order.created"));
    second.key = Some(Bytes::from_static(b"cust\xff17"));
    second.data = Bytes::from_static("{\"total\":\"12 €\"}".as_bytes());
    second.headers = vec![
        ("trace".to_owned(), Bytes::from_static(b"abc")),
        ("bin".to_owned(), Bytes::from_static(b"\x00\xff")),
    ];
    let mut third = bare(3, "");
    third.timestamp_ms = 1_700_000_000_002;
    third.event_type = Some(Arc::from(""));
    third.key = Some(Bytes::new());
    let mut first = bare(0, "{\"a\":1}");
    first.timestamp_ms = 1_700_000_000_000;
    let records = [first, second, third];
    let (ours, ends) = log_of(&records);
    assert_eq!(ours, seeds("three"), "encoder and the seed disagree");
    assert_eq!(walk(seeds("three"), 0), records);
    let padded = scan_segment(seeds("padded"), 0);
    assert_eq!((padded.records, padded.stop), (3, ScanStop::End));
    assert_eq!(padded.padding_bytes, 512 - ours.len());
    let torn = scan_segment(seeds("torn"), 0);
    assert_eq!((torn.records, torn.valid_len), (3, ends[2]));
    assert!(matches!(torn.stop, ScanStop::Torn { .. }));
}
