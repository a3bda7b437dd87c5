//! Kafka mode at start: a broker that is down is an outage (the gateway serves and waits, then
//! works once the broker is up), while configuration mistakes stop the start with a message
//! naming the key.
//!
//! Needs `SLUICEGATE_TEST_KAFKA` (tests/run-all.sh sets it), `tansu` and kafka-python.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::kafka::{
    broker, create_topic, kafka_args, produce, unique, wait_ready, OwnBroker, Rec,
};
use common::{http_request, Gateway, SseClient, EVENT_TIMEOUT};

fn status(gw: &Gateway, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let r = http_request(gw.addr(), method, path, &[], body).expect("an answer");
    (r.status, r.text())
}

#[test]
fn broker_down_at_start_is_an_outage_not_a_failure() {
    let _ = broker();
    let mut own = OwnBroker::start();
    let b = own.addr();
    let topic = unique("e2e-late");
    create_topic(&b, &topic, 1);
    own.kill();

    let mut args = vec!["--shards".to_owned(), "2".to_owned()];
    args.extend(kafka_args(&b, &[&topic], "earliest"));
    args.extend([
        "--set".to_owned(),
        "kafka.request_timeout_ms=1000".to_owned(),
    ]);
    args.extend(["--set".to_owned(), "kafka.backoff_max_ms=300".to_owned()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let gw = Gateway::start(&refs); // waits for /healthz: the gateway is up without its broker

    let (code, text) = status(&gw, "GET", "/readyz", b"");
    assert_eq!(code, 503, "not ready without the broker: {text}");
    let started = Instant::now();
    let (code, text) = status(&gw, "POST", &format!("/topics/{topic}/events"), b"early");
    assert_eq!(code, 503, "publish without the broker: {text}");
    assert!(!text.trim().is_empty(), "503 without a reason");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "publish took {:?}",
        started.elapsed()
    );

    own.launch();
    wait_ready(&gw);
    let mut sub = SseClient::connect(gw.addr(), &format!("/topics/{topic}/events"), &[]);
    produce(&b, &topic, &[Rec::at(0, "after-start")]);
    let evs = sub.expect_events(1, EVENT_TIMEOUT);
    assert_eq!(evs[0].data, "after-start");
    assert!(
        gw.log().contains("cannot reach"),
        "the outage was not logged:\n{}",
        gw.log()
    );
}

/// Runs the binary with `extra` and expects it to exit with an error within 20 s; its stderr.
fn start_fails(extra: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .args(["--listen", "127.0.0.1:1"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the gateway started instead of refusing {extra:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    assert!(!status.success(), "the start should fail; stderr: {err}");
    err
}

#[test]
fn unknown_topic_stops_the_start_naming_it() {
    let b = broker();
    let missing = unique("e2e-missing");
    let err = start_fails(&[
        "--set",
        &format!("kafka.bootstrap=[\"{b}\"]"),
        "--set",
        &format!("kafka.topics=[\"{missing}\"]"),
    ]);
    assert!(
        err.contains(&missing) && err.contains("kafka.topics"),
        "stderr: {err}"
    );
}

#[test]
fn bad_start_position_stops_the_start_naming_the_key() {
    let b = broker();
    let err = start_fails(&[
        "--set",
        &format!("kafka.bootstrap=[\"{b}\"]"),
        "--set",
        "kafka.topics=[\"x\"]",
        "--set",
        "kafka.start=\"yesterday\"",
    ]);
    assert!(err.contains("kafka.start"), "stderr: {err}");
}

#[test]
fn topics_are_required_with_a_bootstrap() {
    let b = broker();
    let err = start_fails(&["--set", &format!("kafka.bootstrap=[\"{b}\"]")]);
    assert!(err.contains("kafka.topics"), "stderr: {err}");
}
