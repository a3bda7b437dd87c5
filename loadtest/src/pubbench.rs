//! `loadtest publish`: a closed-loop publish benchmark (N keep-alive connections, one request in flight each) reporting acknowledged events/s, requests/s and request latency percentiles.
//!
//! Unlike the fan-out test, nothing here is open-loop: each connection sends its next request
//! as soon as the previous answer arrived, so the figures are the gateway's publish capacity
//! at that concurrency (and the latency a publisher sees at it), not latency at a fixed rate.
//! Only answers that complete inside the measured window count; the warm-up and the requests
//! still in flight when the window closes are left out.

use std::ffi::OsString;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;

use crate::procstat::{self_usage, tree_usage};
use crate::publisher::{PubConn, PubOutcome};
use crate::report::new_histogram;

/// Closed-loop publish throughput and latency. Example:
/// `loadtest publish --url 127.0.0.1:8080 --connections 64 --batch 10 --size 100 --duration 10`
#[derive(Parser, Debug)]
#[command(name = "loadtest publish")]
pub struct PubArgs {
    /// Gateway address, `HOST:PORT` (an `http://` prefix and a trailing `/` are accepted).
    #[arg(long, default_value = "127.0.0.1:8080")]
    url: String,
    /// Keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Events per request: 1 sends the event as the raw body, more an NDJSON batch.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Bytes of each event (printable ASCII).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of publishing before the measured window opens.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Topics; each connection goes round-robin over them, starting at its own index.
    #[arg(long, default_value_t = 1)]
    topics: usize,
    /// Topic name prefix (default: unique per run).
    #[arg(long)]
    topic_prefix: Option<String>,
    /// Server process(es) whose CPU use over the window is reported. Repeatable.
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Write the JSON report here ("-" = stdout; the text line then goes to stderr).
    #[arg(long)]
    json: Option<String>,
}

/// Request latency summary in microseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencyUs {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl LatencyUs {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// The JSON report of one run.
#[derive(Clone, Debug, Serialize)]
pub struct PubReport {
    pub mode: &'static str,
    pub url: String,
    pub connections: usize,
    pub batch: usize,
    pub event_bytes: usize,
    pub topics: usize,
    pub warmup_s: f64,
    /// Length of the measured window.
    pub duration_s: f64,
    /// Requests answered 2xx inside the window.
    pub requests_ok: u64,
    /// Events in those requests.
    pub events_ok: u64,
    pub requests_per_s: f64,
    pub events_per_s: f64,
    /// Requests answered with a status outside 2xx inside the window.
    pub non_2xx: u64,
    /// Requests lost to a broken connection inside the window.
    pub errors: u64,
    /// Connections replaced after breaking (whole run).
    pub reconnects: u64,
    pub first_error: Option<String>,
    /// From sending a request to its complete answer, 2xx answers only.
    pub latency_us: LatencyUs,
    /// Server CPU seconds per second over the window (`--server-pid`).
    pub server_cpu: Option<f64>,
    /// This tool's CPU seconds per second over the window.
    pub tool_cpu: f64,
}

/// A connection and when its request in flight left.
struct Slot {
    conn: PubConn,
    sent_at: Option<Instant>,
    /// Requests sent on this slot (decides the next topic).
    sent: u64,
}

/// Connections replaced after breaking, at most, before the run gives up.
const MAX_RECONNECTS: u64 = 1000;

/// Runs `loadtest publish ARGS` (`args` starts with the subcommand's name).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let a: PubArgs = match crate::subcommand::parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let report = match run(&a) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadtest publish: {e}");
            return ExitCode::FAILURE;
        }
    };
    let line = text_line(&report);
    let json = match serde_json::to_string_pretty(&report) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("loadtest publish: json: {e}");
            return ExitCode::FAILURE;
        }
    };
    match a.json.as_deref() {
        Some("-") => {
            eprintln!("{line}");
            println!("{json}");
        }
        Some(path) => {
            println!("{line}");
            if let Err(e) = std::fs::write(path, json) {
                eprintln!("loadtest publish: writing {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
        None => println!("{line}"),
    }
    ExitCode::SUCCESS
}

/// The one-line summary.
pub fn text_line(r: &PubReport) -> String {
    let l = &r.latency_us;
    let cpu = r
        .server_cpu
        .map(|c| format!(", server CPU {c:.2}"))
        .unwrap_or_default();
    format!(
        "publish {} conns x {} events x {} B: {:.0} events/s, {:.0} requests/s acknowledged, \
         {} non-2xx, {} errors; latency us p50 {} p90 {} p99 {} p99.9 {} max {}{cpu}, tool CPU {:.2}",
        r.connections,
        r.batch,
        r.event_bytes,
        r.events_per_s,
        r.requests_per_s,
        r.non_2xx,
        r.errors,
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max,
        r.tool_cpu,
    )
}

/// `HOST:PORT`, with an optional `http://` in front and `/` behind.
pub fn parse_addr(url: &str) -> Result<SocketAddr, String> {
    let hostport = url
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if let Ok(a) = hostport.parse() {
        return Ok(a);
    }
    hostport
        .to_socket_addrs()
        .map_err(|e| format!("--url {url:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("--url {url:?}: no address"))
}

/// The body of one request: one event of `size` printable bytes, or `batch` of them as NDJSON
/// lines (each ended by `\n`). Lines differ in their leading digits.
pub fn body(batch: usize, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch * (size + 1));
    for i in 0..batch {
        let start = out.len();
        let _ = write!(out, "{i:08} ");
        out.truncate(start + size.min(out.len() - start));
        let mut c = 0u8;
        while out.len() - start < size {
            out.push(b'a' + c % 26);
            c = c.wrapping_add(1);
        }
        if batch > 1 {
            out.push(b'\n');
        }
    }
    out
}

/// The complete request publishing `body` to `topic`.
pub fn request(host: &str, topic: &str, batch: usize, body: &[u8]) -> Vec<u8> {
    let ct = if batch > 1 {
        "application/x-ndjson"
    } else {
        "text/plain"
    };
    let mut out = Vec::with_capacity(body.len() + 160);
    let _ = write!(
        out,
        "POST /topics/{topic}/events HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ct}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    out.extend_from_slice(body);
    out
}

fn connect(poll: &Poll, addr: SocketAddr, j: usize) -> Result<PubConn, String> {
    let mut conn = PubConn::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    if let Some(s) = conn.stream.as_mut() {
        poll.registry()
            .register(s, Token(j), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| format!("register: {e}"))?;
    }
    Ok(conn)
}

/// Counters of the measured window.
struct Window {
    start: Instant,
    end: Instant,
    ok: u64,
    non_2xx: u64,
    errors: u64,
    latency: Histogram<u64>,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

fn run(a: &PubArgs) -> Result<PubReport, String> {
    let addr = parse_addr(&a.url)?;
    let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.0, 3600.0));
    let (connections, batch, size, topics) = (
        a.connections.clamp(1, 60_000),
        a.batch.max(1),
        a.size.max(1),
        a.topics.max(1),
    );
    let prefix = a
        .topic_prefix
        .clone()
        .unwrap_or_else(|| format!("pb{}-", std::process::id()));
    let host = addr.to_string();
    let payload = body(batch, size);
    let requests: Vec<Vec<u8>> = (0..topics)
        .map(|t| request(&host, &format!("{prefix}{t}"), batch, &payload))
        .collect();

    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut events = Events::with_capacity(1024);
    let mut slots = Vec::with_capacity(connections);
    for j in 0..connections {
        slots.push(Slot {
            conn: connect(&poll, addr, j)?,
            sent_at: None,
            sent: j as u64,
        });
    }
    let t0 = Instant::now();
    let start = t0 + secs(a.warmup);
    let mut w = Window {
        start,
        end: start + secs(a.duration),
        ok: 0,
        non_2xx: 0,
        errors: 0,
        latency: new_histogram(),
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut reconnects = 0u64;
    let mut first_error: Option<String> = None;
    let mut usage_at_start = None;
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        if now >= w.end {
            break;
        }
        if usage_at_start.is_none() && now >= w.start {
            usage_at_start = Some((now, tree_usage(&a.server_pids), self_usage()));
        }
        let next = if now < w.start { w.start } else { w.end };
        let timeout = (next - now).min(Duration::from_millis(50));
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        for ev in events.iter() {
            let j = ev.token().0;
            let Some(slot) = slots.get_mut(j) else {
                continue;
            };
            let mut out = if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                slot.conn.on_readable(&mut buf)
            } else {
                slot.conn.flush()
            };
            loop {
                let done = Instant::now();
                account(&mut w, slot, &out, done, &mut first_error);
                if out.broken {
                    reconnects += 1;
                    if reconnects > MAX_RECONNECTS {
                        return Err(format!(
                            "connections broke {MAX_RECONNECTS} times: {}",
                            first_error.unwrap_or_default()
                        ));
                    }
                    if let Some(mut s) = slot.conn.stream.take() {
                        let _ = poll.registry().deregister(&mut s);
                    }
                    slot.conn = connect(&poll, addr, j)?;
                    slot.sent_at = None;
                    break;
                }
                if !slot.conn.idle() || done >= w.end {
                    break;
                }
                let Some(req) = requests.get((slot.sent % topics as u64) as usize) else {
                    break;
                };
                slot.sent += 1;
                seq += 1;
                slot.sent_at = Some(Instant::now());
                out = slot.conn.send(seq, |o| o.extend_from_slice(req));
                if !out.broken {
                    break;
                }
            }
        }
    }
    let end = Instant::now();
    let (t_start, server0, tool0) =
        usage_at_start.unwrap_or_else(|| (w.start, tree_usage(&a.server_pids), self_usage()));
    let elapsed = end.saturating_duration_since(t_start).as_secs_f64();
    let window = (w.end - w.start).as_secs_f64();
    let per_s = |n: u64| if window > 0.0 { n as f64 / window } else { 0.0 };
    let server_cpu = (!a.server_pids.is_empty() && elapsed > 0.0)
        .then(|| (tree_usage(&a.server_pids).cpu_s - server0.cpu_s) / elapsed);
    let tool_cpu = if elapsed > 0.0 {
        (self_usage().cpu_s - tool0.cpu_s) / elapsed
    } else {
        0.0
    };
    Ok(PubReport {
        mode: "publish",
        url: addr.to_string(),
        connections,
        batch,
        event_bytes: size,
        topics,
        warmup_s: secs(a.warmup).as_secs_f64(),
        duration_s: window,
        requests_ok: w.ok,
        events_ok: w.ok * batch as u64,
        requests_per_s: per_s(w.ok),
        events_per_s: per_s(w.ok * batch as u64),
        non_2xx: w.non_2xx,
        errors: w.errors,
        reconnects,
        first_error,
        latency_us: LatencyUs::of(&w.latency),
        server_cpu,
        tool_cpu,
    })
}

/// Counts what a connection reported, if it completed inside the window.
fn account(
    w: &mut Window,
    slot: &mut Slot,
    out: &PubOutcome,
    done: Instant,
    first_error: &mut Option<String>,
) {
    if first_error.is_none() {
        first_error.clone_from(&out.error);
    }
    let answered = !out.ok.is_empty() || !out.failed.is_empty();
    let sent_at = if answered { slot.sent_at.take() } else { None };
    if !w.contains(done) {
        return;
    }
    if !out.ok.is_empty() {
        w.ok += out.ok.len() as u64;
        if let Some(t) = sent_at {
            let us = done.saturating_duration_since(t).as_micros();
            let _ = w
                .latency
                .record(u64::try_from(us).unwrap_or(u64::MAX).max(1));
        }
    }
    if out.broken {
        w.errors += out.failed.len() as u64;
    } else {
        w.non_2xx += out.failed.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_event_body_is_raw_and_sized() {
        let b = body(1, 100);
        assert_eq!(b.len(), 100);
        assert!(b.iter().all(|c| c.is_ascii_graphic() || *c == b' '));
        assert_eq!(body(1, 3), b"000");
    }

    #[test]
    fn batch_body_has_one_line_per_event() {
        let b = body(10, 4096);
        let lines: Vec<&[u8]> = b.split(|c| *c == b'\n').collect();
        // Ten lines and the empty remainder after the last newline.
        assert_eq!(lines.len(), 11);
        assert!(lines[..10].iter().all(|l| l.len() == 4096));
        assert!(lines[10].is_empty());
        assert_ne!(lines[0], lines[1]);
    }

    #[test]
    fn request_has_framing_and_content_type() {
        let r = request("h:1", "t0", 10, b"a\nb\n");
        let text = String::from_utf8(r).expect("ascii");
        assert!(text.starts_with("POST /topics/t0/events HTTP/1.1\r\n"));
        assert!(text.contains("Content-Type: application/x-ndjson\r\n"));
        assert!(text.ends_with("Content-Length: 4\r\n\r\na\nb\n"));
        let single = String::from_utf8(request("h:1", "t0", 1, b"x")).expect("ascii");
        assert!(single.contains("Content-Type: text/plain\r\n"));
    }

    #[test]
    fn addresses_with_and_without_scheme() {
        let want: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        assert_eq!(parse_addr("127.0.0.1:8080"), Ok(want));
        assert_eq!(parse_addr("http://127.0.0.1:8080/"), Ok(want));
        assert!(parse_addr("nonsense").is_err());
    }
}
