//! The durable log's per-record work at the partition owner and on recovery: encoding a
//! publish (a type, a key, 2 headers) into the reused append buffer, decoding it back
//! (CRC32C and every field validated), and the recovery scan of a 1 MiB segment.
use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluicegate::internals::broker::log::{
    decode, encode, encoded_len, scan_segment, Decoded, RecordRef,
};

/// A JSON-ish event of exactly `size` bytes.
fn data(size: usize) -> Vec<u8> {
    let mut d = b"{\"order\":\"8c1e\",\"items\":\"".to_vec();
    d.resize(size - 2, b'x');
    d.extend_from_slice(b"\"}");
    d
}

fn record<'a>(offset: u64, headers: &'a [(String, Bytes)], data: &'a [u8]) -> RecordRef<'a> {
    RecordRef {
        offset,
        timestamp_ms: 1_700_000_000_000,
        event_type: Some("order.created"),
        idempotency_key: None,
        key: Some(b"customer-17"),
        headers,
        data,
    }
}

fn headers() -> Vec<(String, Bytes)> {
    vec![
        (
            "trace".to_owned(),
            Bytes::from_static(b"00-4bf92f3577b34da6-01"),
        ),
        ("source".to_owned(), Bytes::from_static(b"checkout")),
    ]
}

fn encode_decode(c: &mut Criterion) {
    let headers = headers();
    for (name, size) in [("100B", 100), ("4KB", 4096)] {
        let data = data(size);
        let rec = record(1_000_000, &headers, &data);
        let len = encoded_len(&rec);
        let mut out = Vec::with_capacity(len);

        let mut g = c.benchmark_group("log_record_encode");
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let n = encode(black_box(&rec), &mut out).expect("encodable");
                black_box((n, &out));
            })
        });
        g.finish();

        let mut g = c.benchmark_group("log_record_decode");
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(name, |b| {
            b.iter(|| match decode(black_box(&out)) {
                Decoded::Record { record, len } => black_box((record.offset, len)),
                other => panic!("{other:?}"),
            })
        });
        g.finish();
    }
}

fn scan(c: &mut Criterion) {
    let headers = headers();
    let data = data(100);
    let mut segment = Vec::with_capacity(1 << 20);
    let mut offset = 0;
    while segment.len() + encoded_len(&record(offset, &headers, &data)) <= 1 << 20 {
        encode(&record(offset, &headers, &data), &mut segment).expect("encodable");
        offset += 1;
    }
    let mut g = c.benchmark_group("log_segment_scan");
    g.throughput(Throughput::Bytes(segment.len() as u64));
    g.bench_function("1MiB_of_100B_records", |b| {
        b.iter(|| {
            let out = scan_segment(black_box(&segment), 0);
            assert_eq!(out.records as u64, offset);
            black_box(out)
        })
    });
    g.finish();
}

criterion_group!(benches, encode_decode, scan);
criterion_main!(benches);
