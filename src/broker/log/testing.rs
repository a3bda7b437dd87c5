//! Test-only builders shared by the log's unit and property tests.
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::record::{encode, Record, HEADER_LEN};

/// A record with every field present, and a non-ASCII character in each text.
pub fn full(offset: u64) -> Record {
    Record {
        offset,
        timestamp_ms: 1_700_000_000_123,
        event_type: Some(Arc::from("order.créé")),
        idempotency_key: Some("idem-ü-1".into()),
        key: Some(Bytes::from_static(b"\x00customer\xff17")),
        headers: vec![
            ("trace".to_owned(), Bytes::from_static(b"abc")),
            ("bin".to_owned(), Bytes::from_static(b"\xff\x00")),
        ],
        data: Bytes::from_static("{\"total\": \"12 €\"}".as_bytes()),
    }
}

/// A record with no optional field and no header.
pub fn bare(offset: u64, data: &'static str) -> Record {
    Record {
        offset,
        timestamp_ms: -5,
        event_type: None,
        idempotency_key: None,
        key: None,
        headers: Vec::new(),
        data: Bytes::from_static(data.as_bytes()),
    }
}

/// One encoded record.
pub fn bytes_of(record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    encode(&record.borrowed(), &mut out).expect("encodable");
    out
}

/// Records back to back, and where each ends.
pub fn log_of(records: &[Record]) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut ends = Vec::new();
    for r in records {
        encode(&r.borrowed(), &mut out).expect("encodable");
        ends.push(out.len());
    }
    (out, ends)
}

/// Recompute the CRC of the record at the start of `buf` (after a test edited its body), so
/// the checks after the CRC can be reached.
pub fn reseal(buf: &mut [u8]) {
    let body_len = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
    let crc = crc32c::crc32c(&buf[HEADER_LEN..HEADER_LEN + body_len]);
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// Any record at `offset`: arbitrary bytes in key and header values, arbitrary Unicode text
/// (multi-byte characters included), each optional field absent, empty or not.
pub fn arb_record_at(offset: u64) -> impl Strategy<Value = Record> {
    (
        any::<i64>(),
        prop::option::of(".{0,12}"),
        prop::option::of(".{0,12}"),
        prop::option::of(bytes(24)),
        prop::collection::vec((".{0,8}", bytes(16)), 0..4),
        ".{0,120}",
    )
        .prop_map(move |(timestamp_ms, ty, idem, key, headers, data)| Record {
            offset,
            timestamp_ms,
            event_type: ty.map(Arc::from),
            idempotency_key: idem.map(Box::from),
            key,
            headers,
            data: Bytes::from(data),
        })
}

/// A segment's base offset and 0..`max` records above it, offsets increasing with gaps.
pub fn arb_log(max: usize) -> impl Strategy<Value = (u64, Vec<Record>)> {
    (0u64..1 << 40, prop::collection::vec(0u64..3, 0..max)).prop_flat_map(|(base, gaps)| {
        let mut offset = base;
        let records: Vec<_> = gaps
            .into_iter()
            .map(|gap| {
                offset += gap;
                let r = arb_record_at(offset);
                offset += 1;
                r
            })
            .collect();
        (Just(base), records)
    })
}
