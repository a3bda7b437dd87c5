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
    crash_test("batch", 20, 0x5eed);
}

/// With `interval`, a 200 means written to the device (direct I/O), not yet synced: a process
/// crash (not a power loss) still loses nothing acknowledged.
#[test]
fn kill_9_with_fsync_interval_loses_no_acknowledged_event_either() {
    crash_test("interval", 6, 0xfeed);
}

/// `crashes` times: start the gateway on one data directory, publish from 4 threads, `kill -9`
/// it at a random moment; then check every acknowledged event is there once, in order.
fn crash_test(fsync: &str, crashes: usize, seed: u64) {
    const PUBLISHERS: usize = 4;
    let data_dir = scratch(&format!("crash-{fsync}"));
    let cfg = durable_config(&data_dir, 2, &format!("fsync = \"{fsync}\""));
    let acked: Acked = Arc::default();
    let mut next = [0u64; PUBLISHERS];
    let mut rng = Lcg(seed);
    for _ in 0..crashes {
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

/// Many publishers on one partition keep several group commits coming back to back (the next
/// one's write starts before the previous one is answered): every publisher's acknowledgements
/// come in offset order, a live subscriber gets every event once in offset order, and after a
/// restart the log holds exactly what was acknowledged, in the same order.
#[test]
fn back_to_back_group_commits_answer_and_deliver_in_offset_order() {
    for fsync in ["interval", "batch"] {
        commit_order_test(fsync);
    }
}

fn commit_order_test(fsync: &str) {
    const PUBLISHERS: usize = 12;
    const EACH: usize = 40;
    let data_dir = scratch(&format!("order-{fsync}"));
    let cfg = durable_config(&data_dir, 1, &format!("fsync = \"{fsync}\""));
    let gw = Gateway::start(&["--config", &cfg, "--shards", "2"]);
    let first = gw.publish("order", "start");
    let mut live = SseClient::connect(
        gw.addr(),
        "/topics/order/events",
        &[("Last-Event-ID", &first)],
    );
    let threads: Vec<_> = (0..PUBLISHERS)
        .map(|who| {
            let addr = gw.addr();
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|n| {
                        let r = http_request(
                            addr,
                            "POST",
                            "/topics/order/events",
                            &[],
                            format!("p{who}-{n}").as_bytes(),
                        )
                        .unwrap_or_else(|e| panic!("publish p{who}-{n}: {e}"));
                        common::publish_ids("order", &r).remove(0)
                    })
                    .collect::<Vec<String>>()
            })
        })
        .collect();
    let acked: Vec<Vec<String>> = threads
        .into_iter()
        .map(|t| t.join().expect("publisher"))
        .collect();
    let offset = |id: &str| -> u64 {
        id.rsplit(['.', '-'])
            .next()
            .and_then(|o| o.parse().ok())
            .unwrap_or_else(|| panic!("offset of {id}"))
    };
    for (who, ids) in acked.iter().enumerate() {
        let offsets: Vec<u64> = ids.iter().map(|id| offset(id)).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "{fsync}: publisher {who} acknowledged out of order: {offsets:?}"
        );
    }
    let total = PUBLISHERS * EACH;
    let check = |events: &[common::ParsedEvent], when: &str| {
        let offsets: Vec<u64> = events.iter().map(|e| offset(&e.last_event_id)).collect();
        let start = offset(&first) + 1;
        let want: Vec<u64> = (start..start + total as u64).collect();
        assert_eq!(
            offsets, want,
            "{fsync}: {when}: not every offset once, in order"
        );
        let mut next = [0usize; PUBLISHERS];
        for e in events {
            let (who, n) = e
                .data
                .strip_prefix('p')
                .and_then(|r| r.split_once('-'))
                .and_then(|(w, n)| Some((w.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
                .unwrap_or_else(|| panic!("{fsync}: unexpected event {:?}", e.data));
            assert_eq!(
                n, next[who],
                "{fsync}: {when}: publisher {who} out of order"
            );
            next[who] += 1;
        }
    };
    check(&live.expect_events(total, EVENT_WAIT), "live");
    drop(live);
    drop(gw);
    let gw = Gateway::start(&["--config", &cfg, "--shards", "2"]);
    let mut replay = SseClient::connect(
        gw.addr(),
        "/topics/order/events",
        &[("Last-Event-ID", &first)],
    );
    check(&replay.expect_events(total, EVENT_WAIT), "after a restart");
    drop(gw);
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

/// Start the gateway with config file `cfg`, expecting it to refuse; its stderr.
fn start_error(cfg: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .args(["--listen", "127.0.0.1:0", "--config", cfg])
        .output()
        .expect("run the gateway");
    assert!(!out.status.success(), "started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_data_directory_is_locked_and_a_changed_partition_count_refused() {
    let data_dir = scratch("lock");
    let cfg = durable_config(&data_dir, 2, "");
    let running = Gateway::start(&["--config", &cfg]);
    let err = start_error(&cfg);
    assert!(err.contains("in use by another gateway"), "{err}");
    drop(running);
    let other = config_file(&format!(
        "[storage]\nmode = \"durable\"\ndata_dir = \"{}\"\n[memory_broker]\npartitions = 3\n",
        data_dir.display()
    ));
    let err = start_error(&other);
    assert!(err.contains("partitions = 2"), "{err}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// A durable config with a short history (so resumes read the disk) and small segments.
fn small_config(data_dir: &Path, storage_extra: &str) -> String {
    config_file(&format!(
        "[storage]\nmode = \"durable\"\ndata_dir = \"{}\"\nsegment_bytes = 65536\n\
         index_interval_bytes = 1024\n{storage_extra}\n[memory_broker]\nhistory_events = 20\n",
        data_dir.display()
    ))
}

/// Publish `n` events `e{i}` of about 200 bytes to topic `t` in batches (NDJSON: one request
/// per 100 events); their ids in order.
fn publish_many(gw: &Gateway, n: usize) -> Vec<String> {
    let pad = "x".repeat(190);
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let body: String = chunk.iter().map(|i| format!("e{i} {pad}\n")).collect();
        let r = http_request(
            gw.addr(),
            "POST",
            "/topics/t/events",
            &[("Content-Type", "application/x-ndjson")],
            body.as_bytes(),
        )
        .expect("publish");
        assert_eq!(r.status, 200, "{}", r.text());
        ids.extend(common::parse_ids(&r.text()).expect("ids"));
    }
    ids
}

/// Events `e{first}`, `e{first + 1}`, ... in order (the first one out of place is reported).
fn assert_in_sequence(events: &[common::ParsedEvent], first: usize) {
    for (i, ev) in events.iter().enumerate() {
        assert_eq!(
            index_of(&ev.data),
            first + i,
            "event {i} of {}",
            events.len()
        );
    }
}

fn index_of(data: &str) -> usize {
    data.strip_prefix('e')
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

#[test]
fn a_resume_older_than_the_history_reads_the_disk_across_segments_and_restarts() {
    let data_dir = scratch("backfill");
    let cfg = small_config(&data_dir, "retention_bytes = 0");
    let mut gw = Gateway::start(&["--config", &cfg, "--shards", "2"]);
    let ids = publish_many(&gw, 1500);
    let segments = std::fs::read_dir(data_dir.join("topics/t/0"))
        .expect("partition dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
        })
        .count();
    assert!(
        segments >= 4,
        "1500 x 200 B spans several 64 KiB segments: {segments}"
    );
    // The history holds the last 20: from event 10 on comes from disk, then from memory.
    let mut sub = SseClient::connect(gw.addr(), "/topics/t/events", &[("Last-Event-ID", &ids[9])]);
    let got = sub.expect_events(1490, EVENT_WAIT);
    assert_in_sequence(&got, 10);
    assert_eq!(got[0].last_event_id, ids[10]);
    assert_eq!(got[1489].last_event_id, ids[1499]);
    drop(sub);
    gw.kill9();
    let gw = Gateway::start(&["--config", &cfg, "--shards", "2"]);
    let mut sub = SseClient::connect(
        gw.addr(),
        "/topics/t/events",
        &[("Last-Event-ID", &ids[700])],
    );
    let got = sub.expect_events(799, EVENT_WAIT);
    assert_in_sequence(&got, 701);
    let more = publish_many(&gw, 1);
    let live = sub.expect_events(1, EVENT_WAIT);
    assert_eq!(live[0].last_event_id, more[0], "then live");
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn retention_deletes_whole_old_segments_and_an_older_resume_gets_a_reset() {
    let data_dir = scratch("retention");
    let cfg = small_config(&data_dir, "retention_bytes = 150000");
    let gw = Gateway::start(&["--config", &cfg]);
    let ids = publish_many(&gw, 1500);
    let dir = data_dir.join("topics/t/0");
    let deadline = Instant::now() + Duration::from_secs(10);
    let total = || -> u64 {
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    while total() > 150_000 + 65_536 + 4096 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(total() <= 150_000 + 65_536 + 4096, "kept {} bytes", total());
    let mut sub = SseClient::connect(gw.addr(), "/topics/t/events", &[("Last-Event-ID", &ids[0])]);
    let first = sub.next_event(EVENT_WAIT).expect("reset");
    assert_eq!(first.event_type, "reset", "{first:?}");
    assert!(first.data.contains("no longer retained"), "{}", first.data);
    let next = sub
        .next_event(EVENT_WAIT)
        .expect("the oldest retained event");
    let oldest = index_of(&next.data);
    assert!(
        oldest > 1 && oldest < 1480,
        "resumed at the oldest retained event: {oldest}"
    );
    let rest = sub.expect_events(1499 - oldest, EVENT_WAIT);
    assert_eq!(index_of(&rest[rest.len() - 1].data), 1499);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn a_full_disk_refuses_publishes_with_503_keeps_reads_going_and_loses_nothing_acknowledged() {
    let data_dir = scratch("full");
    let cfg = durable_config(&data_dir, 1, "");
    // A file-size limit stands in for a full disk: the segment cannot grow past ~120 KB.
    let mut gw = Gateway::start_under(&["prlimit", "--fsize=120000", "--"], &["--config", &cfg]);
    let mut sub = SseClient::connect(gw.addr(), "/topics/t/events", &[]);
    let pad = "y".repeat(1000);
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..400 {
        let r = http_request(
            gw.addr(),
            "POST",
            "/topics/t/events",
            &[],
            format!("f{i} {pad}").as_bytes(),
        )
        .expect("publish");
        if r.status == 200 {
            acked.push(i);
        } else {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("the disk filled up before 400 KB");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("storage"), "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        acked.len() > 50,
        "{} acknowledged before the limit",
        acked.len()
    );
    // Every acknowledged event reached the subscriber; nothing refused did.
    let got = sub.expect_events(acked.len(), EVENT_WAIT);
    for (ev, i) in got.iter().zip(&acked) {
        assert!(
            ev.data.starts_with(&format!("f{i} ")),
            "{} vs f{i}",
            &ev.data[..10]
        );
    }
    assert!(
        sub.next_event(Duration::from_millis(300)).is_none(),
        "a refused event was delivered"
    );
    let ready = http_request(gw.addr(), "GET", "/readyz", &[], b"").expect("readyz");
    assert_eq!(ready.status, 503);
    assert!(ready.text().contains("durable log"), "{}", ready.text());
    let metrics = http_request(gw.addr(), "GET", "/metrics", &[], b"")
        .expect("metrics")
        .text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sluicegate_storage_errors_total") && !l.ends_with(" 0")),
        "storage errors counted"
    );
    // Reads go on: a new subscriber resumes from the first event.
    let first_id = got[0].last_event_id.clone();
    let mut reader = SseClient::connect(
        gw.addr(),
        "/topics/t/events",
        &[("Last-Event-ID", &first_id)],
    );
    reader.expect_events(acked.len() - 1, EVENT_WAIT);
    gw.kill9();
    // Restarted without the limit: exactly the acknowledged events, then new ones.
    let gw = Gateway::start(&["--config", &cfg]);
    let epoch = first_id.split('-').next().expect("epoch").to_owned();
    let mut all = SseClient::connect(
        gw.addr(),
        "/topics/t/events",
        &[("Last-Event-ID", &format!("{epoch}-0"))],
    );
    let stored = all.expect_events(acked.len(), EVENT_WAIT);
    assert_eq!(stored.len(), acked.len());
    assert!(
        all.next_event(Duration::from_millis(300)).is_none(),
        "a refused event came back"
    );
    gw.publish("t", "after");
    assert_eq!(all.expect_events(1, EVENT_WAIT)[0].data, "after");
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// The one segment file of partition 0 of topic `t`.
fn only_segment(data_dir: &Path) -> PathBuf {
    data_dir.join("topics/t/0/00000000000000000000.log")
}

#[test]
fn damaged_segments_lose_only_what_is_damaged_and_the_gateway_says_so() {
    let data_dir = scratch("damage");
    let cfg = durable_config(&data_dir, 1, "");
    let mut gw = Gateway::start(&["--config", &cfg]);
    let ids: Vec<String> = (0..10).map(|i| gw.publish("t", &format!("d{i}"))).collect();
    gw.sigterm();
    assert!(gw.wait_exit(Duration::from_secs(10)).is_some());
    let segment = only_segment(&data_dir);
    let mut bytes = std::fs::read(&segment).expect("segment");
    // Flip a byte inside the fourth record's data, and cut the last record in half.
    let at = bytes
        .windows(2)
        .position(|w| w == b"d3")
        .expect("d3 in the segment");
    bytes[at] ^= 0x20;
    let last = bytes.windows(2).rposition(|w| w == b"d9").expect("d9");
    bytes.truncate(last);
    std::fs::write(&segment, &bytes).expect("damage");
    std::fs::remove_file(data_dir.join("topics/t/0/00000000000000000000.idx")).ok();

    let mut gw = Gateway::start(&["--config", &cfg]);
    let log = gw.log();
    assert!(log.contains("dropped one damaged record"), "{log}");
    assert!(log.contains("dropped a torn or damaged tail"), "{log}");
    let epoch = ids[0].split('-').next().expect("epoch").to_owned();
    let mut all = SseClient::connect(
        gw.addr(),
        "/topics/t/events",
        &[("Last-Event-ID", &format!("{epoch}-0"))],
    );
    let got: Vec<String> = all
        .expect_events(8, EVENT_WAIT)
        .into_iter()
        .map(|e| e.data)
        .collect();
    assert_eq!(got, ["d0", "d1", "d2", "d4", "d5", "d6", "d7", "d8"]);
    // Appending continues after the last whole record, with the next offset.
    let next = gw.publish("t", "d9-again");
    assert_eq!(
        next, ids[9],
        "d9 was lost, so its offset is given out again"
    );
    assert!(
        data_dir
            .join("topics/t/0/00000000000000000000.idx")
            .exists(),
        "the index was rebuilt"
    );
    gw.sigterm();
    let _ = gw.wait_exit(Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn a_quiet_partitions_last_segment_ages_out_and_offsets_carry_on() {
    let data_dir = scratch("quiet");
    // Retention by age (1 s, checked every 250 ms); a history of one event, so a resume reads
    // the disk.
    let cfg = config_file(&format!(
        "[storage]\nmode = \"durable\"\ndata_dir = \"{}\"\nretention_ms = 1000\nretention_bytes = 0\n\
         [memory_broker]\nhistory_events = 1\n",
        data_dir.display()
    ));
    let mut gw = Gateway::start(&["--config", &cfg]);
    let ids: Vec<String> = (0..5).map(|i| gw.publish("t", &format!("q{i}"))).collect();
    let first = data_dir.join("topics/t/0/00000000000000000000.log");
    let successor = data_dir.join("topics/t/0/00000000000000000005.log");
    let deadline = Instant::now() + Duration::from_secs(15);
    while first.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!first.exists(), "the quiet segment outlived retention_ms");
    assert!(successor.exists(), "an empty segment keeps the next offset");
    // A resume from the first event: its successors are gone (reset), the newest is in memory.
    let mut sub = SseClient::connect(gw.addr(), "/topics/t/events", &[("Last-Event-ID", &ids[0])]);
    let reset = sub.next_event(EVENT_WAIT).expect("reset");
    assert_eq!(reset.event_type, "reset", "{reset:?}");
    assert_eq!(sub.next_event(EVENT_WAIT).expect("q4").data, "q4");
    // Offsets carry on, also across a crash.
    let next = gw.publish("t", "q5");
    assert_eq!(
        next,
        format!("{}-6", ids[0].split('-').next().expect("epoch"))
    );
    gw.kill9();
    let gw = Gateway::start(&["--config", &cfg]);
    let after = gw.publish("t", "q6");
    assert_eq!(
        after,
        format!("{}-7", ids[0].split('-').next().expect("epoch"))
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}
