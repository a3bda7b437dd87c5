//! A webhook receiver / WebSub subscriber process for the tests (`tests/webhooks/receiver.py`):
//! it verifies signatures with independent code (PyPI `standardwebhooks`, Python's `hmac`),
//! answers deliveries on a plan the test sets, and logs every request as a JSON line.
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, http_request};

pub struct Receiver {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Receiver {
    /// Start on a free loopback port; `secret` verifies Standard Webhooks signatures,
    /// `hub_secret` WebSub `X-Hub-Signature`.
    pub fn start(secret: Option<&str>, hub_secret: Option<&str>) -> Receiver {
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhooks/receiver.py");
        let log = std::env::temp_dir().join(format!(
            "sluicegate-receiver-{}-{port}.jsonl",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&log);
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .arg("--port")
            .arg(port.to_string())
            .arg("--log")
            .arg(&log);
        if let Some(s) = secret {
            cmd.arg("--secret").arg(s);
        }
        if let Some(s) = hub_secret {
            cmd.arg("--hub-secret").arg(s);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3 tests/webhooks/receiver.py");
        let stdout = child.stdout.take().expect("receiver stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("receiver says ready");
        assert_eq!(line.trim(), "ready", "receiver did not start");
        Receiver { child, port, log }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Set how the next deliveries are answered (see the script).
    pub fn plan(&self, plan: &str) {
        let addr = ([127, 0, 0, 1], self.port).into();
        let r = http_request(addr, "POST", "/_plan", &[], plan.as_bytes()).expect("POST /_plan");
        assert_eq!(r.status, 200);
    }

    /// Verify with another Standard Webhooks secret from now on.
    pub fn set_secret(&self, secret: &str) {
        let addr = ([127, 0, 0, 1], self.port).into();
        let r =
            http_request(addr, "POST", "/_secret", &[], secret.as_bytes()).expect("POST /_secret");
        assert_eq!(r.status, 200);
    }

    /// Every request logged so far.
    pub fn entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The logged POSTs (deliveries).
    pub fn posts(&self) -> Vec<Value> {
        self.entries()
            .into_iter()
            .filter(|e| e["method"] == "POST")
            .collect()
    }

    /// Wait until `pred` holds for the log, or panic with it after `timeout`.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let entries = self.entries();
            if pred(&entries) {
                return entries;
            }
            if Instant::now() > deadline {
                panic!("receiver: {what} not seen within {timeout:?}; log: {entries:#?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for at least `n` POSTs.
    pub fn wait_posts(&self, n: usize, timeout: Duration) -> Vec<Value> {
        self.wait_until(&format!("{n} deliveries"), timeout, |e| {
            e.iter().filter(|e| e["method"] == "POST").count() >= n
        })
        .into_iter()
        .filter(|e| e["method"] == "POST")
        .collect()
    }
}

/// `POST /webhooks` with `body` on the gateway at `addr`; the answer.
pub fn create_webhook(addr: std::net::SocketAddr, body: &Value) -> super::Response {
    http_request(addr, "POST", "/webhooks", &[], body.to_string().as_bytes())
        .expect("POST /webhooks")
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
