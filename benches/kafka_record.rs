//! Kafka record -> shared SSE frame: the per-record work at the partition owner, with and
//! without event-type extraction (header lookup; JSON field parsed with simd-json).
use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluicegate::internals::broker::kafka::{EventTypeRule, LogRecord};
use sluicegate::internals::broker::Framer;
use sluicegate::internals::broker::{EventMeta, PartitionKey};

fn record(value: &str, with_header: bool) -> LogRecord {
    LogRecord {
        topic: Arc::from("orders"),
        partition: 0,
        offset: 42,
        timestamp_ms: 0,
        key: Some(Bytes::from_static(b"customer-17")),
        headers: if with_header {
            vec![("ce_type".to_owned(), Bytes::from_static(b"order.created"))]
        } else {
            Vec::new()
        },
        value: Bytes::copy_from_slice(value.as_bytes()),
        event_type: None,
    }
}

fn frame(c: &mut Criterion) {
    // ~555 B JSON event, the size the design guide quotes for simd-json.
    let mut value = String::from("{\"type\":\"order.created\",\"id\":\"8c1e\",\"items\":[");
    while value.len() < 540 {
        value.push_str("{\"sku\":\"A-1\",\"qty\":2},");
    }
    value.push_str("{\"sku\":\"Z\",\"qty\":1}]}");
    let key = PartitionKey {
        topic: Arc::from("orders"),
        partition: 0,
    };
    let mut g = c.benchmark_group("kafka_record_to_frame");
    g.throughput(Throughput::Elements(1));
    let cases = [
        ("no_type", record(&value, false), EventTypeRule::new("", "")),
        (
            "type_from_header",
            record(&value, true),
            EventTypeRule::new("ce_type", ""),
        ),
        (
            "type_from_json_field",
            record(&value, false),
            EventTypeRule::new("ce_type", "type"),
        ),
    ];
    for (name, rec, rule) in cases {
        let mut framer = Framer::new(0);
        g.bench_function(name, |b| {
            b.iter(|| {
                let event_type = rule.event_type(&rec).map(|t| Arc::from(t.as_ref()));
                let meta = EventMeta {
                    headers: None,
                    event_type,
                    key: rec.key.clone(),
                };
                let offset = rec.offset as u64;
                black_box(
                    framer
                        .frame_data(&key, offset, &rec.value, meta)
                        .map(|e| e.frame.len()),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
