//! Redis for the tests: the shared server `tests/services.sh` starts (its URL in
//! `SLUICEGATE_TEST_REDIS_URL`), a dedicated one a test may stop and restart, and `redis-cli` as
//! the independent reader of what the gateway wrote.
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// How long a dedicated redis-server may take to answer PING, or to exit on SIGTERM.
const START_OR_STOP: Duration = Duration::from_secs(30);

/// The shared Redis's URL; a test cannot run without it (never skipped).
pub fn shared_url() -> String {
    std::env::var("SLUICEGATE_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("SLUICEGATE_TEST_REDIS_URL is not set: run `bash tests/services.sh start` and source target/test-services/env (tests/run-all.sh does)")
    })
}

/// The port of a `redis://host:port` URL.
pub fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// `redis-cli -p PORT ARGS...`, raw output lines (`--no-raw` off: one value per line).
pub fn cli(port: u16, args: &[&str]) -> Vec<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("redis-cli: {e} (apt-get install redis-tools)"));
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// One stream entry as an independent client (Python `redis`) reads it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct StreamEntry {
    pub id: String,
    pub fields: Vec<(String, String)>,
}

impl StreamEntry {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `XRANGE key - +` read by Python's `redis` package (not the gateway's client), fields in
/// the order Redis keeps them.
pub fn xrange(port: u16, key: &str) -> Vec<StreamEntry> {
    let script = r#"
import json, sys, redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
out = [{"id": i.decode(), "fields": [[k.decode(), v.decode()] for k, v in f.items()]}
       for i, f in r.xrange(sys.argv[2], "-", "+")]
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string(), key])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "python redis XRANGE {key}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("XRANGE output: {e}"))
}

/// `XLEN key`.
pub fn xlen(port: u16, key: &str) -> u64 {
    cli(port, &["XLEN", key])
        .first()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// A redis-server of a test's own (AOF, fsync always), stoppable and restartable on the same
/// port and directory.
pub struct OwnRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start() -> OwnRedis {
        let dir = std::env::temp_dir().join(format!(
            "sluicegate-redis-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut r = OwnRedis {
            port: free_port(),
            dir,
            child: None,
        };
        r.launch();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.join("redis.out")).expect("redis log");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--dir", &self.dir.to_string_lossy()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server must be installed (apt-get install redis-server): {e}")
            });
        self.child = Some(child);
        let deadline = Instant::now() + START_OR_STOP;
        loop {
            let pong = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "ping"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
                .unwrap_or(false);
            if pong {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "own redis-server on {} did not answer PING: {}",
                self.port,
                std::fs::read_to_string(self.dir.join("redis.out")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (Redis flushes its AOF and exits) and wait for the exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + START_OR_STOP;
        while child.try_wait().ok().flatten().is_none() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
