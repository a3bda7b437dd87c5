//! Redis for the tests: the shared server `tests/services.sh` starts (its URL in
//! `SLUICEGATE_TEST_REDIS_URL`), a dedicated one a test may stop and restart, and `redis-cli` as
//! the independent reader of what the gateway wrote.
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A redis-server of the test's own (AOF on, fsync always), which it may stop and start again
/// on the same port and directory: what was acknowledged survives.
pub struct OwnRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start(port: u16) -> OwnRedis {
        let dir =
            std::env::temp_dir().join(format!("sluicegate-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut redis = OwnRedis {
            port,
            dir,
            child: None,
        };
        redis.up();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start (again) and wait until it answers PING.
    pub fn up(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server: {e} (apt-get install redis-server)"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pong = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "PING"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG");
            if pong {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not answer",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop (SIGTERM: Redis finishes the AOF and exits) and wait for the exit.
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
