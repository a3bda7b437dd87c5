//! End to end with the durable embedded log (`storage.mode = "durable"`), the real binary and
//! its data directory: crashes (`kill -9`) at random moments under concurrent publishers lose
//! no acknowledged event and repeat none; ids resume across restarts; the directory is locked
//! and a foreign one refused; a full disk refuses publishes with 503 and keeps reads going.
mod common;

use common::{config_file, http_request, Gateway, SseClient};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous per-event wait: replays of thousands of events on a loaded machine.
const EVENT_WAIT: Duration = Duration::from_secs(10);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sluicegate-durable-{name}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A durable gateway's config: `partitions` per topic, `extra` lines in `[storage]`.
fn durable_config(data_dir: &Path, partitions: u32, extra: &str) -> String {
    config_file(&format!(
        "[storage]\nmode = \"durable\"\ndata_dir = \"{}\"\n{extra}\n[memory_broker]\n\
         partitions = {partitions}\nhistory_events = 100000\nhistory_bytes = 67108864\n",
        data_dir.display()
    ))
}

/// A small deterministic generator (no rand crate in the tests).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// What the publishers saw acknowledged: per publisher, the sequence numbers, in order.
type Acked = Arc<Mutex<HashMap<usize, Vec<u64>>>>;

/// Publish `p{publisher}-{n}` with key `p{publisher}` (one partition per publisher, so its
/// events keep their order) until the gateway stops answering; record what was acknowledged.
fn publisher(
    addr: std::net::SocketAddr,
    who: usize,
    first: u64,
    acked: Acked,
    stop: Arc<AtomicBool>,
) -> u64 {
    let mut n = first;
    while !stop.load(Ordering::Relaxed) {
        let path = format!("/topics/crash/events?key=p{who}");
        match http_request(addr, "POST", &path, &[], format!("p{who}-{n}").as_bytes()) {
            Ok(r) if r.status == 200 => {
                if let Ok(mut a) = acked.lock() {
                    a.entry(who).or_default().push(n);
                }
            }
            // Refused (draining, 503) or cut off by the kill: maybe written, never acknowledged.
            _ => {}
        }
        n += 1;
    }
    n
}

#[test]
fn kill_9_at_random_moments_loses_and_repeats_no_acknowledged_event() {
    const PUBLISHERS: usize = 4;
    const CRASHES: usize = 20;
    let data_dir = scratch("crash");
    let cfg = durable_config(&data_dir, 2, "fsync = \"batch\"");
    let acked: Acked = Arc::default();
    let mut next = [0u64; PUBLISHERS];
    let mut rng = Lcg(0x5eed);
    for _ in 0..CRASHES {
        let mut gw = Gateway::start(&["--config", &cfg, "--shards", "2"]);
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..PUBLISHERS)
            .map(|who| {
                let (acked, stop, first, addr) =
                    (acked.clone(), stop.clone(), next[who], gw.addr());
                std::thread::spawn(move || publisher(addr, who, first, acked, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30 + rng.next(250)));
        gw.kill9();
        stop.store(true, Ordering::Relaxed);
        for (who, t) in threads.into_iter().enumerate() {
            next[who] = t.join().expect("publisher thread");
        }
    }
    let acked = acked.lock().expect("acked").clone();
    let total: usize = acked.values().map(Vec::len).sum();
    assert!(
        total > 100,
        "too few publishes acknowledged to mean anything: {total}"
    );

    // Everything from the start of both partitions, read by a client after the last restart.
    let gw = Gateway::start(&["--config", &cfg, "--shards", "2"]);
    let id = gw.publish("crash-probe", "x");
    let epoch = id.split('-').next().expect("epoch").to_owned();
    let mut sub = SseClient::connect(
        gw.addr(),
        "/topics/crash/events",
        &[("Last-Event-ID", &format!("{epoch}-0.0"))],
    );
    let mut seen: HashMap<usize, Vec<u64>> = HashMap::new();
    let mut ids = Vec::new();
    let mut events = 0usize;
    while let Some(ev) = sub.next_event(Duration::from_millis(1500)) {
        let (who, n) = ev
            .data
            .strip_prefix('p')
            .and_then(|rest| rest.split_once('-'))
            .map(|(w, n)| {
                (
                    w.parse::<usize>().unwrap_or(99),
                    n.parse::<u64>().unwrap_or(0),
                )
            })
            .expect("p{who}-{n}");
        seen.entry(who).or_default().push(n);
        ids.push(ev.last_event_id.clone());
        events += 1;
    }
    assert!(
        events >= total,
        "read {events} events, {total} were acknowledged"
    );
    for (who, acks) in &acked {
        let got = seen.get(who).cloned().unwrap_or_default();
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "publisher {who}: out of order or repeated: {got:?}"
        );
        for n in acks {
            assert!(
                got.binary_search(n).is_ok(),
                "publisher {who}: acknowledged event {n} lost after a crash"
            );
        }
    }
    // A client that read part of it and resumes gets exactly the rest.
    let half = ids.len() / 2;
    let mut resumed = SseClient::connect(
        gw.addr(),
        "/topics/crash/events",
        &[("Last-Event-ID", &ids[half - 1])],
    );
    let rest = resumed.expect_events(ids.len() - half, EVENT_WAIT);
    let rest_ids: Vec<&str> = rest.iter().map(|e| e.last_event_id.as_str()).collect();
    let want: Vec<&str> = ids[half..].iter().map(String::as_str).collect();
    assert_eq!(rest_ids, want);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn ids_and_idempotency_keys_outlive_a_restart() {
    let data_dir = scratch("restart");
    let cfg = durable_config(&data_dir, 1, "");
    let mut gw = Gateway::start(&["--config", &cfg]);
    let first = gw.publish_with("t", "", &[("Sluicegate-Id", "once")], b"a");
    let second = gw.publish("t", "b");
    gw.sigterm();
    assert!(gw.wait_exit(Duration::from_secs(10)).is_some(), "stopped");
    let gw = Gateway::start(&["--config", &cfg]);
    let again = gw.publish_with("t", "", &[("Sluicegate-Id", "once")], b"a");
    assert_eq!(
        again, first,
        "the repeat of an idempotency key answers the first id"
    );
    let third = gw.publish("t", "c");
    let mut sub = SseClient::connect(
        gw.addr(),
        "/topics/t/events",
        &[("Last-Event-ID", &first[0])],
    );
    let evs = sub.expect_events(2, EVENT_WAIT);
    let got: Vec<(&str, &str)> = evs
        .iter()
        .map(|e| (e.data.as_str(), e.last_event_id.as_str()))
        .collect();
    assert_eq!(got, [("b", second.as_str()), ("c", third.as_str())]);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn a_data_directory_is_locked_and_a_changed_partition_count_refused() {
    let data_dir = scratch("lock");
    let cfg = durable_config(&data_dir, 2, "");
    let _running = Gateway::start(&["--config", &cfg]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .args(["--listen", "127.0.0.1:0", "--config", &cfg])
        .output()
        .expect("run a second gateway");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another gateway"), "{err}");
    drop(_running);
    let other = config_file(&format!(
        "[storage]\nmode = \"durable\"\ndata_dir = \"{}\"\n[memory_broker]\npartitions = 3\n",
        data_dir.display()
    ));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .args(["--listen", "127.0.0.1:0", "--config", &other])
        .output()
        .expect("run with another partition count");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("partitions = 2"), "{err}");
    let _ = std::fs::remove_dir_all(&data_dir);
}
