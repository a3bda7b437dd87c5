//! `loadtest webhook-pub`: open-loop publishing for webhook delivery benchmarks. Event `i` is
//! due at `start + i / rate` whatever the gateway does, and carries that due time as ns since
//! the Unix epoch (`SEQ DUE_NS xxx...`, `--size` bytes), so `loadtest webhook-sink`, another
//! process, can tell publish-to-receipt latency from the wall clock both read. Late sends
//! (the gateway slow to answer publishes) therefore count as latency, not as a lower rate.
//! The report (JSON on stdout) says how many publishes were acknowledged: the sink expects
//! that many times the number of subscriptions. It also reports each publish's round trip
//! alone (`answer_latency_us`: from the request's send to its answer), which leaves out the
//! send lag (this tool wakes with mio's millisecond poll timeout, so sends leave up to ~1 ms
//! after their due time even on an idle gateway).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;

use crate::flavor::{payload, Server};
use crate::pubbench::{parse_addr, LatencyUs};
use crate::publisher::{PubConn, PubOutcome};
use crate::report::new_histogram;
use crate::webhook_sink::now_epoch_ns;

/// Open-loop publisher. Example:
/// `loadtest webhook-pub --url 127.0.0.1:8080 --topic t --rate 1000 --size 100 --duration 10`
#[derive(Parser, Debug)]
#[command(name = "loadtest webhook-pub")]
pub struct WhPubArgs {
    /// Gateway address, `HOST:PORT`.
    #[arg(long, default_value = "127.0.0.1:8080")]
    url: String,
    /// Topic published to.
    #[arg(long)]
    topic: String,
    /// Events per second.
    #[arg(long)]
    rate: f64,
    /// Bytes of each event (at least the sequence number and the stamp, ~30 bytes).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Seconds of publishing: `round(rate * duration)` events (at least one).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Keep-alive connections, each with one publish in flight.
    #[arg(long, default_value_t = 8)]
    connections: usize,
}

/// The JSON report.
#[derive(Serialize)]
struct WhPubReport {
    scheduled: u64,
    ok: u64,
    failed: u64,
    reconnects: u64,
    first_error: Option<String>,
    /// From the first due time to the last answer.
    elapsed_s: f64,
    /// How late publishes left relative to their due time.
    send_lag_us: LatencyUs,
    /// Due time to the publish's answer.
    publish_latency_us: LatencyUs,
    /// The request's send to its answer (2xx answers only).
    answer_latency_us: LatencyUs,
}

const MAX_RECONNECTS: u64 = 1000;

struct Counts {
    ok: u64,
    failed: u64,
    reconnects: u64,
    first_error: Option<String>,
    send_lag: Histogram<u64>,
    latency: Histogram<u64>,
    answer: Histogram<u64>,
}

impl Counts {
    /// Counts what a connection reported; `answered_rel` is when (ns after the start),
    /// `sent_rel` when its request in flight left.
    fn take(
        &mut self,
        o: &PubOutcome,
        in_flight: &mut bool,
        answered_rel: u64,
        sent_rel: u64,
        due_ns: &dyn Fn(u64) -> u64,
    ) {
        for seq in &o.ok {
            let l = answered_rel.saturating_sub(due_ns(*seq));
            self.latency.saturating_record((l / 1000).max(1));
            let a = answered_rel.saturating_sub(sent_rel);
            self.answer.saturating_record((a / 1000).max(1));
        }
        self.ok += o.ok.len() as u64;
        self.failed += o.failed.len() as u64;
        if !o.ok.is_empty() || !o.failed.is_empty() {
            *in_flight = false;
        }
        if o.broken && self.first_error.is_none() {
            self.first_error = o.error.clone();
        }
    }
}

/// A new connection in place of a broken one.
fn replace(
    poll: &Poll,
    addr: SocketAddr,
    j: usize,
    old: &mut PubConn,
    c: &mut Counts,
) -> Result<PubConn, String> {
    c.reconnects += 1;
    if c.reconnects > MAX_RECONNECTS {
        return Err(format!(
            "connections broke {MAX_RECONNECTS} times: {:?}",
            c.first_error
        ));
    }
    if let Some(mut s) = old.stream.take() {
        let _ = poll.registry().deregister(&mut s);
    }
    connect(poll, addr, j)
}

pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let a: WhPubArgs = match crate::subcommand::parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let report = run(&a).and_then(|r| serde_json::to_string(&r).map_err(|e| e.to_string()));
    match report {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadtest webhook-pub: {e}");
            ExitCode::FAILURE
        }
    }
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

fn run(a: &WhPubArgs) -> Result<WhPubReport, String> {
    let addr = parse_addr(&a.url)?;
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        return Err("--rate must be > 0".into());
    }
    let total = ((a.rate * a.duration.clamp(0.0, 86_400.0)).round() as u64).max(1);
    let interval_ns = 1e9 / a.rate;
    let host = addr.to_string();
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut events = Events::with_capacity(1024);
    let mut conns = Vec::new();
    for j in 0..a.connections.clamp(1, 10_000) {
        conns.push(connect(&poll, addr, j)?);
    }
    // Whether connection j has a publish in flight (the end waits for every answer).
    let mut in_flight = vec![false; conns.len()];
    // When connection j's request in flight left (ns after the start).
    let mut sent_rel = vec![0u64; conns.len()];
    // Let the connections finish connecting before the first event is due.
    let start = Instant::now() + Duration::from_millis(20);
    let due_ns = |seq: u64| (seq as f64 * interval_ns) as u64;
    let mut c = Counts {
        ok: 0,
        failed: 0,
        reconnects: 0,
        first_error: None,
        send_lag: new_histogram(),
        latency: new_histogram(),
        answer: new_histogram(),
    };
    let mut queue: VecDeque<u64> = VecDeque::new();
    let mut next = 0u64;
    let mut data = String::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    loop {
        let now_rel = Instant::now().saturating_duration_since(start).as_nanos() as u64;
        while next < total && due_ns(next) <= now_rel {
            queue.push_back(next);
            next += 1;
        }
        for j in 0..conns.len() {
            if !conns[j].idle() {
                continue;
            }
            let Some(seq) = queue.pop_front() else {
                break;
            };
            let lag = now_rel.saturating_sub(due_ns(seq));
            c.send_lag.saturating_record((lag / 1000).max(1));
            // The due time on the wall clock: now, less how late this send is.
            payload(seq, now_epoch_ns().saturating_sub(lag), a.size, &mut data);
            out.clear();
            Server::Sluicegate.publish_request(&host, &a.topic, &data, &mut out);
            in_flight[j] = true;
            sent_rel[j] = start.elapsed().as_nanos() as u64;
            let o = conns[j].send(seq, |w| w.extend_from_slice(&out));
            // A send that fails at once answers nothing: nothing is recorded as latency.
            c.take(&o, &mut in_flight[j], 0, 0, &due_ns);
            if o.broken {
                conns[j] = replace(&poll, addr, j, &mut conns[j], &mut c)?;
            }
        }
        if next >= total && queue.is_empty() && !in_flight.iter().any(|b| *b) {
            break;
        }
        let until_due = if next < total {
            Duration::from_nanos(due_ns(next).saturating_sub(now_rel))
        } else {
            Duration::from_millis(50)
        };
        match poll.poll(&mut events, Some(until_due.min(Duration::from_millis(50)))) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let answered_rel = start.elapsed().as_nanos() as u64;
        for ev in events.iter() {
            let j = ev.token().0;
            let Some(conn) = conns.get_mut(j) else {
                continue;
            };
            let o: PubOutcome = if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                conn.on_readable(&mut buf)
            } else {
                conn.flush()
            };
            c.take(&o, &mut in_flight[j], answered_rel, sent_rel[j], &due_ns);
            if o.broken {
                *conn = replace(&poll, addr, j, conn, &mut c)?;
            }
        }
    }
    let Counts {
        ok,
        failed,
        reconnects,
        first_error,
        send_lag,
        latency,
        answer,
    } = c;
    Ok(WhPubReport {
        scheduled: total,
        ok,
        failed,
        reconnects,
        first_error,
        elapsed_s: start.elapsed().as_secs_f64(),
        send_lag_us: LatencyUs::of(&send_lag),
        publish_latency_us: LatencyUs::of(&latency),
        answer_latency_us: LatencyUs::of(&answer),
    })
}
