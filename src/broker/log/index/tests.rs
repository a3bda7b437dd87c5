//! Unit and property tests of the sparse index: which entries are kept, lookups, and that its
//! file form is taken whole or refused.
use super::*;
use crate::broker::log::record::Record;
use crate::broker::log::segment_scan::Records;
use crate::broker::log::testing::{arb_log, bare, log_of};
use proptest::prelude::*;

fn entry(relative_offset: u32, position: u32) -> IndexEntry {
    IndexEntry {
        relative_offset,
        position,
    }
}

fn encoded(index: &SparseIndex) -> Vec<u8> {
    let mut out = Vec::new();
    index.encode(&mut out);
    out
}

/// An index at base 1000 with entries (rel 5, pos 4096) and (rel 9, pos 8192).
fn two_entries() -> SparseIndex {
    let mut index = SparseIndex::new(1000, 4096);
    assert!(index.maybe_add(1005, 4096));
    assert!(index.maybe_add(1009, 8192));
    index
}

#[test]
fn keeps_one_entry_per_interval() {
    let mut index = SparseIndex::new(1000, 4096);
    assert!(!index.maybe_add(1000, 0), "position 0 is implicit");
    assert!(
        !index.maybe_add(1001, 4095),
        "under one interval from the start"
    );
    assert!(index.maybe_add(1002, 4096));
    assert!(!index.maybe_add(1003, 8000));
    assert!(index.maybe_add(1004, 8192));
    assert_eq!(index.entries(), [entry(2, 4096), entry(4, 8192)]);
}

#[test]
fn refuses_entries_that_do_not_increase_or_fit() {
    let mut index = SparseIndex::new(1000, 0);
    assert!(index.maybe_add(1005, 100));
    assert!(!index.maybe_add(1005, 200), "same offset");
    assert!(!index.maybe_add(1004, 300), "offset going back");
    assert!(!index.maybe_add(1006, 100), "same position");
    assert!(!index.maybe_add(1006, 50), "position going back");
    assert!(!index.maybe_add(999, 400), "below the base");
    assert!(!index.maybe_add(1000 + (1 << 32), 400), "offset past u32");
    assert!(!index.maybe_add(1006, 1 << 32), "position past u32");
    assert!(index.maybe_add(1006, 101), "interval 0 keeps every record");
    assert_eq!(index.entries(), [entry(5, 100), entry(6, 101)]);
}

#[test]
fn lookup_gives_the_greatest_entry_at_or_below() {
    let index = two_entries();
    assert_eq!(SparseIndex::new(1000, 4096).lookup(5000), 0, "empty");
    for (offset, position) in [
        (0, 0),
        (999, 0),
        (1000, 0),
        (1004, 0),
        (1005, 4096),
        (1008, 4096),
        (1009, 8192),
        (u64::MAX, 8192),
    ] {
        assert_eq!(index.lookup(offset), position, "offset {offset}");
    }
}

#[test]
fn file_round_trip_with_and_without_block_padding() {
    for index in [SparseIndex::new(7, 4096), two_entries()] {
        let mut bytes = encoded(&index);
        assert_eq!(
            bytes.len(),
            HEAD_LEN + index.entries().len() * ENTRY_LEN + CRC_LEN
        );
        let base = index.base_offset();
        assert_eq!(SparseIndex::decode(&bytes, base, 4096), Ok(index.clone()));
        bytes.resize(4096, 0);
        assert_eq!(SparseIndex::decode(&bytes, base, 4096), Ok(index));
    }
}

#[test]
fn damaged_files_are_refused() {
    let good = encoded(&two_entries());
    let decode = |bytes: &[u8]| SparseIndex::decode(bytes, 1000, 4096);
    for cut in 0..good.len() {
        assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    for at in 0..good.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[at] ^= flip;
            assert!(decode(&bad).is_err(), "byte {at} ^ {flip:#x}");
        }
    }
    assert_eq!(decode(&[0; 4096]), Err(IndexError::BadMagic));
    assert_eq!(decode(b"SGIX"), Err(IndexError::TooShort { len: 4 }));
    assert_eq!(
        SparseIndex::decode(&good, 999, 4096),
        Err(IndexError::WrongBase {
            found: 1000,
            expected: 999
        })
    );
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0, 0, 1]);
    assert_eq!(decode(&trailing), Err(IndexError::TrailingBytes));
}

/// Index bytes with the given header fields and entries and a correct CRC.
fn sealed(version: u32, count: u32, entries: &[(u32, u32)]) -> Vec<u8> {
    let mut out = b"SGIX".to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&1000u64.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    for (o, p) in entries {
        out.extend_from_slice(&o.to_le_bytes());
        out.extend_from_slice(&p.to_le_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn well_sealed_but_wrong_contents_are_refused() {
    let decode = |bytes: &[u8]| SparseIndex::decode(bytes, 1000, 4096);
    assert!(decode(&sealed(1, 2, &[(1, 10), (2, 20)])).is_ok());
    assert_eq!(
        decode(&sealed(2, 2, &[(1, 10), (2, 20)])),
        Err(IndexError::UnsupportedVersion(2))
    );
    for entries in [[(1, 10), (1, 20)], [(1, 10), (2, 10)], [(2, 10), (1, 20)]] {
        assert_eq!(
            decode(&sealed(1, 2, &entries)),
            Err(IndexError::NotIncreasing { at: 1 }),
            "{entries:?}"
        );
    }
    // A count the bytes cannot hold is refused before anything is sized by it.
    for count in [3, u32::MAX] {
        assert_eq!(
            decode(&sealed(1, count, &[(1, 10), (2, 20)])),
            Err(IndexError::Truncated { count })
        );
    }
}

#[test]
fn rebuild_indexes_a_scan_and_lookups_find_every_record() {
    let records: Vec<Record> = (0..200)
        .map(|i| bare(50 + 2 * i, "some event data"))
        .collect();
    let (log, _) = log_of(&records);
    let (index, outcome) = SparseIndex::rebuild(&log, 50, 256);
    assert_eq!((outcome.records, outcome.valid_len), (200, log.len()));
    assert!(index.entries().len() > 10, "{}", index.entries().len());
    for r in &records {
        let from = index.lookup(r.offset) as usize;
        let found = Records::new(&log[from..], 50)
            .map(|(_, v)| v.offset)
            .find(|&o| o >= r.offset);
        assert_eq!(found, Some(r.offset));
    }
}

proptest! {
    /// A rebuilt index survives its file form, and every lookup lands on a record boundary at
    /// or before the record sought (or, across a gap, the first one after it).
    #[test]
    fn rebuilt_index_round_trips_and_never_overshoots(
        (base, records) in arb_log(40),
        interval in 0u32..600,
        probes in prop::collection::vec(any::<u64>(), 0..8),
    ) {
        let (log, ends) = log_of(&records);
        let (index, _) = SparseIndex::rebuild(&log, base, interval);
        prop_assert_eq!(SparseIndex::decode(&encoded(&index), base, interval), Ok(index.clone()));
        let starts: Vec<u64> = std::iter::once(0)
            .chain(ends.iter().map(|&e| e as u64))
            .collect();
        let last = records.last().map_or(base, |r| r.offset);
        let probes = probes.into_iter().map(|p| base + p % (last - base + 2));
        let sought = records.iter().map(|r| r.offset).chain(probes);
        for offset in sought {
            let from = index.lookup(offset);
            prop_assert!(starts.contains(&from), "not a record start: {}", from);
            // Where the first record at or after `offset` starts.
            let target = records
                .iter()
                .position(|r| r.offset >= offset)
                .map_or(log.len() as u64, |i| starts[i]);
            prop_assert!(from <= target, "lookup({}) = {} past {}", offset, from, target);
        }
    }

    /// Whatever is offered to `maybe_add`, the entries increase and the file round-trips.
    #[test]
    fn any_offers_keep_entries_increasing(
        interval in 0u32..100,
        offers in prop::collection::vec((0u64..1 << 33, 0u64..1 << 33), 0..40),
    ) {
        let mut index = SparseIndex::new(1 << 31, interval);
        for (offset, position) in offers {
            index.maybe_add(offset, position);
        }
        for pair in index.entries().windows(2) {
            prop_assert!(pair[0].relative_offset < pair[1].relative_offset);
            prop_assert!(pair[0].position < pair[1].position);
        }
        prop_assert_eq!(SparseIndex::decode(&encoded(&index), 1 << 31, interval), Ok(index));
    }
}

/// The fuzz seed index was written by a separate implementation of the layout (see the scan's
/// seed test): it pins the file format.
#[test]
fn format_matches_the_committed_seed() {
    let seed = include_bytes!("../../../../fuzz/seeds/log_segment/index");
    let mut index = SparseIndex::new(0, 0);
    assert!(index.maybe_add(1, 39)); // the second record of the `three-records` seed
    assert_eq!(SparseIndex::decode(seed, 0, 0), Ok(index.clone()));
    assert_eq!(encoded(&index), seed);
}
