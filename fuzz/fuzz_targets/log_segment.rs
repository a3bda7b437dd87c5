//! Fuzz the durable log's segment reader and index decoder on arbitrary bytes: never panic; a
//! scan keeps a prefix of the input that scans again to the same records; the record walk and
//! the scan agree; an index that decodes encodes back to the same bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluicegate::internals::broker::log::{scan_segment, Record, Records, ScanStop, SparseIndex};

/// The records of `buf` as owned values (sharing `buf`).
fn records(buf: &Bytes) -> Vec<Record> {
    Records::new(buf, 0)
        .map(|(_, r)| r.to_record(buf))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let buf = Bytes::copy_from_slice(data);
    let out = scan_segment(&buf, 0);
    assert!(out.valid_len <= buf.len());
    assert_eq!(out.valid_len + out.dropped_bytes(), buf.len());
    let kept = records(&buf);
    assert_eq!(kept.len(), out.records);
    assert_eq!(kept.first().map(|r| r.offset), out.first_offset);
    assert_eq!(kept.last().map(|r| r.offset), out.last_offset);

    // What recovery keeps is a clean log of the same records, from its first offset on too.
    let prefix = buf.slice(..out.valid_len);
    let again = scan_segment(&prefix, out.first_offset.unwrap_or(0));
    assert_eq!(
        (again.valid_len, again.records),
        (out.valid_len, out.records)
    );
    assert_eq!((again.stop, again.dropped_bytes()), (ScanStop::End, 0));
    assert_eq!(records(&prefix), kept);

    // An index rebuilt from the bytes points at record starts, never past the one sought.
    let (index, _) = SparseIndex::rebuild(&buf, 0, 64);
    let mut starts = vec![0];
    starts.extend(Records::new(&buf, 0).map(|(at, _)| at as u64));
    for (i, r) in kept.iter().enumerate() {
        let from = index.lookup(r.offset);
        assert!(starts.contains(&from));
        assert!(
            from <= starts[i + 1],
            "record {i} starts at {}",
            starts[i + 1]
        );
    }

    // The same bytes as an index file, for the base offset they name (so the fuzzer gets past
    // that check): decodes or is refused, and what decodes is exactly what it encodes to.
    let base = data
        .get(8..16)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    if let Ok(index) = SparseIndex::decode(data, base, 4096) {
        let mut encoded = Vec::new();
        index.encode(&mut encoded);
        assert_eq!(data.get(..encoded.len()), Some(&encoded[..]));
        assert!(data[encoded.len()..].iter().all(|&b| b == 0));
    }
});
