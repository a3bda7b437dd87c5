//! End-to-end test harness: starts the real `sluicegate` binary on a loopback port, talks to it
//! with a small HTTP client and an SSE client, and stops it (SIGTERM or kill) when done.
//! Each `tests/e2e_*.rs` file includes this with `mod common;`; not every file uses every helper.
#![allow(dead_code)]

pub mod cluster;
pub mod http;
pub mod jwt;
pub mod kafka;
pub mod kafka_proxy;
pub mod receiver;
pub mod redis;
pub mod sse;
pub mod ws;

// Not every test file uses every re-export.
#[allow(unused_imports)]
pub use http::{http_request, parse_ids, send_raw, HttpConn, Response};
#[allow(unused_imports)]
pub use sse::{ParsedEvent, SseClient};

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long the gateway may take to answer `/healthz` after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Default wait for one event in tests.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A running gateway process; killed on drop unless it already exited.
pub struct Gateway {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    log_path: PathBuf,
    exit: Option<ExitStatus>,
}

/// A fresh scratch directory under the system temp dir (no tempfile crate here).
fn scratch_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "sluicegate-e2e-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Writes `toml` to a fresh scratch file and returns its path, for `--config`.
pub fn config_file(toml: &str) -> String {
    let path = scratch_dir().join("sluicegate.toml");
    std::fs::write(&path, toml).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.to_string_lossy().into_owned()
}

/// How long a gateway may take to become ready (`/readyz` 200: its brokers reached and every
/// partition's reading positioned); generous, for a loaded CI machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `/readyz` until 200; panics with the last answer and the log after `READY_TIMEOUT`.
pub fn wait_ready(gw: &Gateway) {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        match http_request(gw.addr(), "GET", "/readyz", &[], b"") {
            Ok(r) if r.status == 200 => return,
            Ok(r) => last = format!("status {} body {:?}", r.status, r.text()),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{}: /readyz not 200 after {READY_TIMEOUT:?} (last: {last}); log:\n{}",
        gw.addr(),
        gw.log()
    );
}

/// A loopback port that was free a moment ago (bound, read, released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl Gateway {
    /// Spawns `sluicegate --listen 127.0.0.1:PORT [--shards 1] ARGS...` (`--shards 1` unless
    /// `args` sets it) and waits until `GET /healthz` answers 200. Panics with the gateway's log
    /// when it does not start.
    pub fn start(args: &[&str]) -> Gateway {
        Self::start_under(&[], args)
    }

    /// [`Gateway::start`], run through `prefix` (e.g. `prlimit --fsize=N --`).
    pub fn start_under(prefix: &[&str], args: &[&str]) -> Gateway {
        let dir = scratch_dir();
        let log_path = dir.join("gateway.log");
        let log = File::create(&log_path).expect("create gateway log");
        let log2 = log.try_clone().expect("clone log handle");
        let port = free_port();
        let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
        // SLUICEGATE_E2E_BIN runs the tests against another build (e.g. a release binary).
        let bin = std::env::var_os("SLUICEGATE_E2E_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sluicegate")));
        let mut cmd = match prefix.split_first() {
            None => Command::new(&bin),
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&bin);
                c
            }
        };
        cmd.arg("--listen").arg(addr.to_string());
        if !args
            .iter()
            .any(|a| *a == "--shards" || a.starts_with("--shards="))
        {
            cmd.args(["--shards", "1"]);
        }
        cmd.args(args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut gw = Gateway {
            child,
            addr,
            dir,
            log_path,
            exit: None,
        };
        gw.wait_healthy(args);
        gw
    }

    fn wait_healthy(&mut self, args: &[&str]) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
                panic!(
                    "sluicegate {args:?} exited during start with {status}; log:\n{}",
                    self.log()
                );
            }
            match http_request(self.addr, "GET", "/healthz", &[], b"") {
                Ok(r) if r.status == 200 => return,
                Ok(r) => last = format!("status {}", r.status),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "sluicegate {args:?} not healthy after {START_TIMEOUT:?} (last: {last}); log:\n{}",
            self.log()
        );
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The scratch directory the gateway runs in.
    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }

    /// Everything the gateway wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends SIGTERM (through `kill`, so the tests need no unsafe code).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("run kill: {e}"));
        assert!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.child.id()
        );
    }

    /// Kills the process with SIGKILL (a crash: nothing runs on the way out) and waits for it.
    pub fn kill9(&mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("run kill: {e}"));
        assert!(status.success(), "kill -KILL {} failed", self.child.id());
        assert!(
            self.wait_exit(Duration::from_secs(10)).is_some(),
            "not dead after SIGKILL"
        );
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exit {
                return Some(s);
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                self.exit = Some(s);
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics (with the log) unless the process is still running and `/healthz` answers 200.
    pub fn assert_alive(&mut self) {
        if let Ok(Some(s)) = self.child.try_wait() {
            self.exit = Some(s);
            panic!("sluicegate exited ({s}); log:\n{}", self.log());
        }
        match http_request(self.addr, "GET", "/healthz", &[], b"") {
            Ok(r) if r.status == 200 => {}
            other => panic!("sluicegate not healthy: {other:?}; log:\n{}", self.log()),
        }
    }

    /// Publishes one event on a fresh connection; asserts 200 and returns its id.
    pub fn publish(&self, topic: &str, data: &str) -> String {
        let ids = self.publish_with(topic, "", &[], data.as_bytes());
        assert_eq!(ids.len(), 1, "one id per single publish, got {ids:?}");
        ids.into_iter().next().unwrap_or_default()
    }

    /// `POST /topics/{topic}/events{query}` with `headers`; asserts 200 JSON and returns the ids.
    /// `query` is either empty or starts with `?`.
    pub fn publish_with(
        &self,
        topic: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<String> {
        let path = format!("/topics/{topic}/events{query}");
        let r = http_request(self.addr, "POST", &path, headers, body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}; log:\n{}", self.log()));
        publish_ids(&path, &r)
    }

    /// A keep-alive connection whose responses come from `shard` (tries new connections until
    /// the kernel's SO_REUSEPORT hashing lands one there).
    pub fn conn_on_shard(&self, shard: usize) -> HttpConn {
        for _ in 0..200 {
            let mut c = HttpConn::connect(self.addr).expect("connect");
            let r = c
                .request("GET", "/healthz", &[], b"")
                .expect("GET /healthz");
            if r.shard() == Some(shard) && c.is_open() {
                return c;
            }
        }
        panic!("no connection landed on shard {shard} in 200 tries");
    }
}

/// Checks a publish answer and returns its ids.
pub fn publish_ids(what: &str, r: &Response) -> Vec<String> {
    assert_eq!(
        r.status,
        200,
        "{what}: status {} body {:?}",
        r.status,
        r.text()
    );
    let ct = r.header("content-type").unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "{what}: content-type {ct:?}"
    );
    parse_ids(&r.text()).unwrap_or_else(|| panic!("{what}: no ids array in {:?}", r.text()))
}

/// Publishes one event over a keep-alive connection; returns its id.
pub fn publish_on(conn: &mut HttpConn, topic: &str, data: &str) -> String {
    let path = format!("/topics/{topic}/events");
    let r = conn
        .request("POST", &path, &[], data.as_bytes())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let ids = publish_ids(&path, &r);
    assert_eq!(ids.len(), 1, "{path}: {ids:?}");
    ids.into_iter().next().unwrap_or_default()
}

/// An event without an `event:` field: browsers call its type "message".
pub fn is_untyped(ev: &ParsedEvent) -> bool {
    ev.event_type.is_empty() || ev.event_type == "message"
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.exit.is_none() {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
        // Keep the scratch dir (and its log) when a test failed, for a look afterwards.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// SHA-256 as hex: how API keys are written in the config (a test needs its own key's digest).
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The lower-case hex HMAC (`M`: `Hmac<Sha256>` and kin) of `body` with `key`, as WebSub's
/// `X-Hub-Signature: sha256=<hex>` carries it.
pub fn hmac_hex<M: hmac::Mac + hmac::digest::KeyInit>(key: &[u8], body: &[u8]) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
