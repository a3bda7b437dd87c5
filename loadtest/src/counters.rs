//! Server-side counts around each rate step, so a step's cost can be given per delivery in
//! system calls and wake-ups, not only in CPU seconds: context switches of the server's threads
//! (`/proc`, any server), Sluicegate's own `/metrics` counters, and optionally `perf stat`
//! tracepoint counts (every syscall, context switches, wake-ups) for any server.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Tracepoints `perf stat` counts on the server's threads. Software tracepoints, because this VM
/// exposes no hardware counters (`instructions` is "not supported").
pub const PERF_EVENTS: &str = "raw_syscalls:sys_enter,sched:sched_switch,sched:sched_wakeup";

/// Context switches (voluntary + involuntary) summed over every thread of `pids`. A voluntary
/// switch is the thread going to sleep, so each one is later paid for by a wake-up.
pub fn ctx_switches(pids: &[u32]) -> u64 {
    let mut total = 0;
    for pid in pids {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Ok(text) = fs::read_to_string(t.path().join("status")) else {
                continue;
            };
            total += parse_ctx_switches(&text);
        }
    }
    total
}

fn parse_ctx_switches(status: &str) -> u64 {
    status
        .lines()
        .filter(|l| {
            l.starts_with("voluntary_ctxt_switches:")
                || l.starts_with("nonvoluntary_ctxt_switches:")
        })
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// Every sample of a Prometheus text page, summed over labels (all shards), by metric name.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut parts = line.rsplitn(2, ' ');
        let (Some(value), Some(series)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series).trim();
        *out.entry(name.to_string()).or_insert(0.0) += v;
    }
    out
}

/// [`scrape`] of every address, the samples summed over them (several gateway instances are
/// one server); `None` without addresses.
pub fn scrape_all(addrs: &[SocketAddr]) -> Option<Result<BTreeMap<String, f64>, String>> {
    if addrs.is_empty() {
        return None;
    }
    let mut sum = BTreeMap::new();
    for addr in addrs {
        match scrape(*addr) {
            Ok(m) => {
                for (k, v) in m {
                    *sum.entry(k).or_insert(0.0) += v;
                }
            }
            Err(e) => return Some(Err(format!("{addr}: {e}"))),
        }
    }
    Some(Ok(sum))
}

/// GETs `http://addr/metrics` with a blocking socket (a few ms, only at step edges, never while
/// events are being timed) and returns its samples summed by name.
pub fn scrape(addr: SocketAddr) -> Result<BTreeMap<String, f64>, String> {
    let t = Duration::from_secs(3);
    let mut s = TcpStream::connect_timeout(&addr, t).map_err(|e| format!("metrics: {e}"))?;
    s.set_read_timeout(Some(t)).map_err(|e| e.to_string())?;
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("metrics: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    // Read until the body announced by Content-Length is complete (or the server closes), so a
    // server that keeps the connection open does not cost a read timeout.
    loop {
        let n = s.read(&mut chunk).map_err(|e| format!("metrics: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|len| buf.len() >= end + 4 + len) {
                break;
            }
        }
    }
    let end = find(&buf, b"\r\n\r\n").ok_or("metrics: no response head")?;
    if !buf.starts_with(b"HTTP/1.1 200") && !buf.starts_with(b"HTTP/1.0 200") {
        return Err("metrics: status is not 200".into());
    }
    Ok(parse_metrics(&String::from_utf8_lossy(&buf[end + 4..])))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Counter deltas `after - before` for every name in `after` (gauges come out as changes too;
/// readers use the `_total` ones).
pub fn delta(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .collect()
}

/// A running `perf stat` attached to the server's processes.
pub struct Perf {
    child: Child,
    out: PathBuf,
}

impl Perf {
    /// Starts counting [`PERF_EVENTS`] (and `extra_events`) on every thread of `pids`; `None`
    /// when perf is missing or refuses (the run goes on without these figures).
    pub fn start(pids: &[u32], extra_events: &str) -> Option<Perf> {
        if pids.is_empty() {
            return None;
        }
        let out = std::env::temp_dir().join(format!(
            "loadtest-perf-{}-{}.csv",
            std::process::id(),
            pids[0]
        ));
        let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
        let mut events = PERF_EVENTS.to_string();
        if !extra_events.is_empty() {
            events = format!("{events},{extra_events}");
        }
        let child = Command::new("perf")
            .args([
                "stat",
                "-x",
                ",",
                "-e",
                &events,
                "-p",
                &list.join(","),
                "-o",
            ])
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Perf { child, out })
    }

    /// Stops perf (SIGINT makes it print its counts) and returns them by event name.
    pub fn stop(mut self) -> Option<BTreeMap<String, u64>> {
        // std has no signal API and this crate has no libc: kill(1) sends the SIGINT.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let text = fs::read_to_string(&self.out).ok()?;
        let _ = fs::remove_file(&self.out);
        let counts = parse_perf_csv(&text);
        (!counts.is_empty()).then_some(counts)
    }
}

/// `perf stat -x,` lines are `count,unit,event,...`; comments and "<not counted>" are skipped.
fn parse_perf_csv(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((
                f.get(2)?.trim().to_string(),
                f.first()?.trim().parse().ok()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_series_over_shards() {
        let m = parse_metrics(
            "# TYPE sluicegate_sse_writes_total counter\n\
             sluicegate_sse_writes_total{shard=\"0\"} 5\n\
             sluicegate_sse_writes_total{shard=\"1\"} 7\n\
             up 1\n",
        );
        assert_eq!(m["sluicegate_sse_writes_total"], 12.0);
        assert_eq!(m["up"], 1.0);
    }

    #[test]
    fn reads_both_kinds_of_context_switch() {
        let s = "Name:\tx\nvoluntary_ctxt_switches:\t10\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(parse_ctx_switches(s), 13);
    }

    #[test]
    fn reads_perf_csv() {
        let t = "# started on x\n\n1234,,raw_syscalls:sys_enter,2000,100.00,,\n\
                 <not counted>,,sched:sched_wakeup,0,0.00,,\n";
        let c = parse_perf_csv(t);
        assert_eq!(c["raw_syscalls:sys_enter"], 1234);
        assert!(!c.contains_key("sched:sched_wakeup"));
    }

    #[test]
    fn counts_own_switches() {
        std::thread::sleep(Duration::from_millis(2));
        assert!(ctx_switches(&[std::process::id()]) > 0);
    }
}
