//! Graceful drain under load: every publish answered 200 reaches every subscriber that was
//! connected when it was answered, before that subscriber's stream is closed. The embedded
//! broker's history dies with the process, so an event lost here cannot be resumed.
//!
//! The race this guards against: after SIGTERM the shard that owns the topic kept appending and
//! acknowledging while another shard had already closed its streams. Where SIGTERM lands
//! decides whether it shows, so the scenario runs many rounds with the signal at a different
//! moment of the load each time, and counts acknowledged-but-undelivered pairs.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Gateway, SseClient};

const ROUNDS: usize = 20;
const SUBSCRIBERS: usize = 200;
const PUBLISHERS: usize = 8;
const BATCH: usize = 10;
/// Each publisher sends a batch this often: 8 x 10 events / 40 ms = 2,000 events/s.
const BATCH_EVERY: Duration = Duration::from_millis(40);
const TOPIC: &str = "drain-load";
/// Generous on purpose: on a loaded machine a slow drain is fine, an early close is the bug.
const DRAIN_TIMEOUT_MS: &str = "server.drain_timeout_ms=30000";

/// What one subscriber saw before its stream ended.
struct Received {
    shard: Option<usize>,
    data: HashSet<String>,
    /// The last few events' data, for a failure message.
    tail: Vec<String>,
    resets: usize,
    duplicates: usize,
    closed: bool,
    told_to_reconnect: bool,
}

/// What one round found.
struct Round {
    acked: usize,
    lost_pairs: usize,
    lost_example: Option<String>,
}

#[test]
fn acknowledged_events_reach_every_subscriber_before_the_drain_closes_it() {
    let mut lost = 0;
    let mut summary = Vec::new();
    // More rounds on demand, to hunt a rarer interleaving locally.
    let rounds = std::env::var("SLUICEGATE_DRAIN_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS);
    for round in 0..rounds {
        // Spread SIGTERM over the load: 200 ms .. 1.5 s after publishing started.
        let delay = Duration::from_millis(200 + (round as u64 * 269) % 1300);
        let r = drain_round(delay);
        summary.push(format!(
            "round {round}: SIGTERM after {delay:?}, {} events acknowledged, {} pairs lost{}",
            r.acked,
            r.lost_pairs,
            r.lost_example
                .map(|e| format!(" (e.g. {e})"))
                .unwrap_or_default()
        ));
        lost += r.lost_pairs;
    }
    assert_eq!(
        lost,
        0,
        "acknowledged events never delivered:\n{}",
        summary.join("\n")
    );
}

fn drain_round(sigterm_after: Duration) -> Round {
    let mut gw = Gateway::start(&[
        "--shards",
        "2",
        "--set",
        DRAIN_TIMEOUT_MS,
        "--set",
        "sse.max_queue_bytes=16777216",
    ]);
    let path = format!("/topics/{TOPIC}/events");
    // `connect` returns once the opening comment arrived, i.e. the subscriber is registered.
    let subscribers: Vec<SseClient> = (0..SUBSCRIBERS)
        .map(|_| SseClient::connect(gw.addr(), &path, &[]))
        .collect();
    let shards: HashSet<Option<usize>> = subscribers.iter().map(SseClient::shard).collect();
    assert!(
        shards.contains(&Some(0)) && shards.contains(&Some(1)),
        "subscribers landed on shards {shards:?} only"
    );
    let readers: Vec<_> = subscribers
        .into_iter()
        .map(|sub| thread::spawn(move || read_until_closed(sub)))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            // Half the publishers on each shard: the topic's owner is one of them.
            let conn = gw.conn_on_shard(p % 2);
            let stop = stop.clone();
            thread::spawn(move || publish_until_refused(conn, p, &stop))
        })
        .collect();

    thread::sleep(sigterm_after);
    gw.sigterm();
    let exit = gw.wait_exit(Duration::from_secs(60));
    stop.store(true, Ordering::SeqCst);
    assert!(
        exit.is_some_and(|s| s.success()),
        "gateway did not exit cleanly after SIGTERM: {exit:?}; log:\n{}",
        gw.log()
    );
    let acked: Vec<String> = publishers
        .into_iter()
        .flat_map(|h| h.join().expect("publisher thread"))
        .collect();
    let received: Vec<Received> = readers
        .into_iter()
        .map(|h| h.join().expect("subscriber thread"))
        .collect();

    assert!(
        !acked.is_empty(),
        "no publish was acknowledged before SIGTERM"
    );
    let mut lost_pairs = 0;
    let mut lost_example = None;
    for (i, sub) in received.iter().enumerate() {
        assert!(sub.closed, "subscriber {i} was not closed by the drain");
        assert!(
            sub.told_to_reconnect,
            "subscriber {i} (shard {:?}) closed without the drain's retry notice",
            sub.shard
        );
        assert_eq!(sub.duplicates, 0, "subscriber {i} got events twice");
        let missing: Vec<&String> = acked.iter().filter(|d| !sub.data.contains(*d)).collect();
        if !missing.is_empty() {
            lost_example.get_or_insert_with(|| {
                format!(
                    "subscriber {i} on shard {:?} got {} events and {} resets, misses {}: {:?}; \
                     its last events: {:?}",
                    sub.shard,
                    sub.data.len(),
                    sub.resets,
                    missing.len(),
                    &missing[..missing.len().min(12)],
                    sub.tail
                )
            });
        }
        lost_pairs += missing.len();
    }
    Round {
        acked: acked.len(),
        lost_pairs,
        lost_example,
    }
}

fn read_until_closed(mut sub: SseClient) -> Received {
    let closed = sub.wait_closed(Duration::from_secs(90));
    let mut data = HashSet::new();
    let mut duplicates = 0;
    let mut resets = 0;
    let events = sub.events_for(Duration::ZERO);
    let tail = events
        .iter()
        .rev()
        .take(4)
        .map(|e| e.data.clone())
        .collect();
    for ev in events {
        if ev.event_type == "reset" {
            resets += 1;
        } else if !data.insert(ev.data) {
            duplicates += 1;
        }
    }
    Received {
        shard: sub.shard(),
        data,
        tail,
        resets,
        duplicates,
        closed,
        told_to_reconnect: sub.raw_text().contains("gateway shutting down"),
    }
}

/// Publishes 10-event NDJSON batches every `BATCH_EVERY` until a publish is not answered 200;
/// returns the data of every event that was.
fn publish_until_refused(
    mut conn: common::HttpConn,
    publisher: usize,
    stop: &AtomicBool,
) -> Vec<String> {
    let path = format!("/topics/{TOPIC}/events");
    let headers = [("Content-Type", "application/x-ndjson")];
    let mut acked = Vec::new();
    let mut next = Instant::now();
    for batch in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let lines: Vec<String> = (0..BATCH)
            .map(|i| format!("p{publisher}-b{batch}-e{i}"))
            .collect();
        let body = lines.join("\n");
        match conn.request("POST", &path, &headers, body.as_bytes()) {
            Ok(r) if r.status == 200 => acked.extend(lines),
            // 503 while draining, or the connection closed: this publisher is done.
            _ => break,
        }
        next += BATCH_EVERY;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    acked
}
