//! Criterion benches for the SSE wire format: framing one event, and parsing a stream of them.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluicegate::codec::sse::{encode_event, SseEvent};
use sluicegate::codec::sse_parse::SseParser;

/// Events in each parsed stream.
const STREAM_EVENTS: usize = 1000;

/// The payload shapes: (name, payload).
fn payloads() -> Vec<(&'static str, Vec<u8>)> {
    let single = "x".repeat(100).into_bytes();
    // 10 lines of ~102 bytes: 1 KiB with 10 data lines.
    let ten_lines = (0..10)
        .map(|i| format!("{i:02}{}", "y".repeat(100)))
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes();
    let mut json = String::from("{\"items\":[");
    let mut i = 0;
    while json.len() < 16 * 1024 - 64 {
        json.push_str(&format!(
            "{{\"id\":{i},\"name\":\"item-{i}\",\"price\":{}.{:02},\"tags\":[\"a\",\"b\"]}},",
            i * 7,
            i % 100
        ));
        i += 1;
    }
    json.push_str("{}]}");
    vec![
        ("100B_1line", single),
        ("1KiB_10lines", ten_lines),
        ("16KiB_json", json.into_bytes()),
    ]
}

fn event(data: &[u8]) -> SseEvent<'_> {
    SseEvent {
        id: Some("1718000000000-42"),
        event: Some("update"),
        data,
        retry_ms: None,
    }
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse_encode");
    for (name, data) in payloads() {
        group.throughput(Throughput::Bytes(data.len() as u64));
        let mut out = BytesMut::with_capacity(32 * 1024);
        group.bench_with_input(BenchmarkId::from_parameter(name), &data, |b, data| {
            b.iter(|| {
                out.clear();
                let id_len = encode_event(&mut out, &event(black_box(data)));
                black_box((id_len, out.len()))
            })
        });
    }
    group.finish();
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse_parse_1000_events");
    for (name, data) in payloads() {
        let mut stream = BytesMut::new();
        for _ in 0..STREAM_EVENTS {
            if encode_event(&mut stream, &event(&data)).is_err() {
                panic!("bench payload {name} is not a valid event");
            }
        }
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &stream, |b, stream| {
            b.iter(|| {
                let mut parser = SseParser::new();
                let mut events = Vec::new();
                let mut seen = 0;
                // 16 KiB reads, as a socket would deliver them; events are looked at and
                // dropped, as the load tool does.
                for chunk in stream.chunks(16 * 1024) {
                    parser.feed_into(black_box(chunk), &mut events);
                    seen += events.len();
                    black_box(&events);
                    events.clear();
                }
                assert_eq!(seen, STREAM_EVENTS);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_encode, bench_parse);
criterion_main!(benches);
