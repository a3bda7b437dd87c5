//! Criterion benches for the WebSocket wire format: framing one event in its JSON envelope
//! (whole, and as a per-subscriber head over a shared tail), and decoding a client frame.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluicegate::codec::ws::{envelope_head, envelope_tail, event_frame, ClientFrames};

/// The payload shapes: (name, payload), as in the SSE bench.
fn payloads() -> Vec<(&'static str, Vec<u8>)> {
    let small = "x".repeat(100).into_bytes();
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
    vec![("100B", small), ("16KiB_json", json.into_bytes())]
}

fn bench_envelope(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_envelope");
    for (name, data) in payloads() {
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &data, |b, data| {
            b.iter(|| {
                event_frame(
                    "orders.eu",
                    "1718000000000-42",
                    Some("update"),
                    black_box(data),
                )
            })
        });
    }
    group.finish();

    // The per-subscriber part when a subscriber has its own cursor id: only the head is
    // written per subscriber, the tail is shared.
    let tail = envelope_tail(Some("update"), &payloads()[0].1);
    let mut out = BytesMut::with_capacity(256);
    c.bench_function("ws_envelope_head/cursor_id", |b| {
        b.iter(|| {
            out.clear();
            envelope_head(
                &mut out,
                "orders.eu",
                black_box("p0:1718000000000-42,p1:1718000000000-17"),
                tail.len(),
            );
            black_box(out.len())
        })
    });
}

/// A masked client frame (FIN, opcode, payload up to 125 bytes).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

fn bench_client_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_client_decode");
    let frame = client_frame(1, br#"{"op":"subscribe","topic":"orders.eu","from":"10"}"#);
    assert_eq!(frame.len(), 6 + 50);
    group.throughput(Throughput::Bytes(frame.len() as u64));
    let mut decoder = ClientFrames::new(64 * 1024, 64 * 1024);
    group.bench_function("small_text", |b| {
        b.iter(|| {
            decoder.feed(black_box(&frame));
            let msg = decoder.next();
            assert!(matches!(msg, Ok(Some(_))));
            black_box(msg)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_envelope, bench_client_decode);
criterion_main!(benches);
