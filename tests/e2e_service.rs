//! Running as a service: the systemd unit the binary prints passes `systemd-analyze verify`,
//! readiness reaches a `NOTIFY_SOCKET` (`READY=1`, then `STOPPING=1` on SIGTERM), and
//! `log.format = "json"` writes one JSON object per line.
mod common;

use common::Gateway;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("sluicegate-service-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn the_printed_systemd_unit_verifies() {
    let dir = scratch("unit");
    let config = dir.join("sluicegate.toml");
    std::fs::write(&config, "[server]\nshards = 2\n").expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .arg("--print-systemd-unit")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = String::from_utf8(out.stdout).expect("utf8");
    assert!(unit.contains("Type=notify"), "{unit}");
    assert!(
        unit.contains(&format!("--config {}", config.display())),
        "{unit}"
    );
    let path = dir.join("sluicegate.service");
    std::fs::write(&path, &unit).expect("unit file");
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd; tests/run-all.sh installs it)");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{stderr}");
    // systemd-analyze only warns about values it ignores: none may be about our unit.
    assert!(!stderr.contains("sluicegate.service"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn readiness_and_stopping_reach_the_notify_socket() {
    let dir = scratch("notify");
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let port = common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--shards", "2"])
        .current_dir(&dir)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 within 15 s");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means serving.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let r = common::http_request(addr, "GET", "/readyz", &[], b"").expect("readyz");
    assert_eq!(r.status, 200);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let n = socket.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(child.wait().expect("exit").success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mut gw = Gateway::start(&["--set", "log.format=json"]);
    gw.publish("t", "x");
    gw.sigterm();
    assert!(gw.wait_exit(Duration::from_secs(10)).is_some());
    let log = gw.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{log}");
    let mut messages = Vec::new();
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        messages.push(v["fields"]["message"].as_str().unwrap_or("").to_owned());
    }
    assert!(
        messages.iter().any(|m| m == "sluicegate listening"),
        "{messages:?}"
    );
    let listening = lines
        .iter()
        .find(|l| l.contains("sluicegate listening"))
        .expect("line");
    let v: serde_json::Value = serde_json::from_str(listening).expect("json");
    assert!(
        v["fields"]["listen"].is_string(),
        "structured fields: {listening}"
    );
}

#[test]
fn metrics_carry_stage_latency_summaries() {
    let gw = Gateway::start(&[]);
    let mut sub = common::SseClient::connect(gw.addr(), "/topics/lat/events", &[]);
    for i in 0..5 {
        gw.publish("lat", &format!("e{i}"));
    }
    sub.expect_events(5, common::EVENT_TIMEOUT);
    let text = common::http_request(gw.addr(), "GET", "/metrics", &[], b"")
        .expect("metrics")
        .text();
    assert!(
        text.contains("# TYPE sluicegate_stage_seconds summary"),
        "{text}"
    );
    assert!(
        text.contains("sluicegate_stage_seconds_count{stage=\"publish\"} 5"),
        "{text}"
    );
    let count = |stage: &str| -> u64 {
        text.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "sluicegate_stage_seconds_count{{stage=\"{stage}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(
        count("fanout_first_write"),
        5,
        "one per event on the subscriber's shard"
    );
    assert_eq!(count("fanout_last_write"), 5);
    let p99: f64 = text
        .lines()
        .find(|l| l.starts_with("sluicegate_stage_seconds{stage=\"publish\",quantile=\"0.99\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("publish p99");
    assert!(p99 > 0.0 && p99 < 10.0, "{p99}");
}
