//! Load generator for Sluicegate and peer gateways (Nchan, Pushpin): N SSE or WebSocket
//! subscribers on T topics, open-loop HTTP publishing at fixed rates, latency from each event's scheduled send
//! time (coordinated-omission-free), loss and duplicates by sequence number, server CPU and RSS.
//! `loadtest publish ...` is a closed-loop publish benchmark instead (see `pubbench`);
//! `loadtest webhook-sink ...` and `loadtest webhook-pub ...` measure webhook deliveries (a
//! receiver and an open-loop publisher; `webhooks.py` drives them).

mod body;
mod counters;
mod engine;
mod flavor;
mod httpmini;
mod procstat;
mod pubbench;
mod publisher;
mod report;
mod runner;
mod sinkhttp;
mod sinkstats;
mod subcommand;
mod subs;
mod webhook_pub;
mod webhook_sink;
mod wsframe;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::body::Transport;
use crate::engine::Config;
use crate::flavor::Server;

/// Open-loop SSE or WebSocket fan-out load test. Example:
/// `loadtest --server sluicegate --sub-addr 127.0.0.1:8080 --subscribers 1000 --rate 50`
/// (`--sub-addr A,B,C` spreads the subscribers and publishes over three instances).
/// Closed-loop publish benchmark: `loadtest publish --help`. Webhook deliveries:
/// `loadtest webhook-sink --help`, `loadtest webhook-pub --help`.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Which server is under test (decides the URLs and publish format).
    #[arg(long, value_enum, default_value = "sluicegate")]
    server: Server,
    /// Address the subscribers connect to. Several (repeated, or a comma list) spread the
    /// subscribers over gateway instances: subscriber i connects to address i mod N.
    #[arg(
        long,
        alias = "addr",
        value_delimiter = ',',
        default_value = "127.0.0.1:8080"
    )]
    sub_addr: Vec<SocketAddr>,
    /// Address publishes go to (default: the subscribe addresses; Pushpin: its control port).
    /// Several (repeated, or a comma list): publisher connection j uses address j mod N and
    /// events go to the connections in turn, so publishes spread over the instances.
    #[arg(long, value_delimiter = ',')]
    pub_addr: Vec<SocketAddr>,
    /// How subscribers read: SSE, WebSocket (Sluicegate: JSON envelopes; Nchan and Pushpin
    /// send the data alone) or WebSocket raw mode (Sluicegate's `?mode=raw`).
    #[arg(long, value_enum, default_value = "sse")]
    transport: Transport,
    /// Number of subscribers.
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Number of topics (subscriber i reads topic i mod T; events go round-robin).
    #[arg(long, default_value_t = 1)]
    topics: usize,
    /// Topic name prefix (default: unique per run, so runs never see each other's history).
    #[arg(long)]
    topic_prefix: Option<String>,
    /// Event payload size in bytes (at least the sequence and timestamp).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Events per second (total over all topics). 0 = idle: hold the connections only.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Sweep: multiply the rate by this factor each step (> 1), up to --max-steps steps.
    #[arg(long)]
    sweep: Option<f64>,
    /// Explicit comma-separated rate steps (overrides --rate/--sweep).
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
    #[arg(long, default_value_t = 8)]
    max_steps: usize,
    /// Stop the sweep at a step whose target deliveries/s (rate x subscribers) exceeds this.
    #[arg(long, default_value_t = 5e6)]
    max_deliveries: f64,
    /// Seconds of publishing per step.
    #[arg(long, default_value_t = 5.0)]
    step_secs: f64,
    /// Seconds allowed after each step for the last deliveries.
    #[arg(long, default_value_t = 2.0)]
    grace_secs: f64,
    /// Seconds to wait after every subscriber is connected, before publishing.
    #[arg(long, default_value_t = 1.0)]
    settle_secs: f64,
    /// Idle runs: seconds to hold the connections.
    #[arg(long, default_value_t = 5.0)]
    hold_secs: f64,
    /// Fraction of subscribers that stop reading right after their response head.
    #[arg(long, default_value_t = 0.0)]
    slow_fraction: f64,
    /// Keep-alive publisher connections (each has one request in flight).
    #[arg(long, default_value_t = 16)]
    pub_conns: usize,
    /// New subscriber connections per second.
    #[arg(long, default_value_t = 5000.0)]
    connect_rate: f64,
    #[arg(long, default_value_t = 60.0)]
    connect_timeout_secs: f64,
    /// Server process(es) to measure; their descendants are included. Repeatable.
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Scrape Sluicegate's `/metrics` at this address before and after each step (SSE writes
    /// per delivery in the report). Several (repeated, or a comma list): the counters are
    /// summed over the instances.
    #[arg(long, value_delimiter = ',')]
    metrics_addr: Vec<SocketAddr>,
    /// Attach `perf stat` (tracepoints: syscalls, context switches, wake-ups) to the server's
    /// processes for each step. Costs the server a little per syscall, so it is opt-in.
    #[arg(long)]
    perf: bool,
    /// More `perf stat` events for `--perf`, comma-separated (e.g. uprobes on the server's
    /// executor: `probe_sluicegate:*`).
    #[arg(long, default_value = "")]
    perf_events: String,
    /// A step fails when its p99 exceeds this (or anything is lost).
    #[arg(long, default_value_t = 100.0)]
    p99_limit_ms: f64,
    /// Keep stepping after a failed step.
    #[arg(long)]
    no_stop_on_fail: bool,
    /// Write the JSON report here ("-" = stdout, replacing the table).
    #[arg(long)]
    json: Option<String>,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
}

fn rates(a: &Args) -> Vec<f64> {
    if !a.rates.is_empty() {
        return a.rates.clone();
    }
    if a.rate <= 0.0 {
        return Vec::new();
    }
    let factor = a.sweep.filter(|f| *f > 1.0);
    let steps = if factor.is_some() {
        a.max_steps.max(1)
    } else {
        1
    };
    let mut out = Vec::new();
    let mut r = a.rate;
    for _ in 0..steps {
        if !out.is_empty() && r * a.subscribers as f64 > a.max_deliveries {
            break;
        }
        out.push(r);
        r *= factor.unwrap_or(1.0);
    }
    out
}

fn main() -> ExitCode {
    match std::env::args_os().nth(1) {
        Some(a) if a == "publish" => return pubbench::main(std::env::args_os().skip(1)),
        Some(a) if a == "webhook-sink" => return webhook_sink::main(std::env::args_os().skip(1)),
        Some(a) if a == "webhook-pub" => return webhook_pub::main(std::env::args_os().skip(1)),
        _ => {}
    }
    let a = Args::parse();
    let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.0, 3600.0));
    let cfg = Config {
        server: a.server,
        transport: a.transport,
        pub_addrs: if a.pub_addr.is_empty() {
            a.sub_addr.clone()
        } else {
            a.pub_addr.clone()
        },
        sub_addrs: a.sub_addr.clone(),
        subscribers: a.subscribers,
        topics: a.topics.max(1),
        topic_prefix: a
            .topic_prefix
            .clone()
            .unwrap_or_else(|| format!("lt{}-{}-", std::process::id(), now_secs())),
        event_bytes: a.size.max(32),
        rates: rates(&a),
        step: secs(a.step_secs),
        grace: secs(a.grace_secs),
        settle: secs(a.settle_secs),
        hold: secs(a.hold_secs),
        slow_fraction: a.slow_fraction.clamp(0.0, 1.0),
        pub_conns: a.pub_conns.max(1),
        connect_rate: a.connect_rate.max(1.0),
        connect_timeout: secs(a.connect_timeout_secs),
        server_pids: a.server_pids.clone(),
        metrics_addrs: a.metrics_addr.clone(),
        perf: a.perf,
        perf_events: a.perf_events.clone(),
        p99_limit_ms: a.p99_limit_ms,
        stop_on_fail: !a.no_stop_on_fail,
        progress: !a.quiet,
    };
    let report = match runner::run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadtest: {e}");
            return ExitCode::FAILURE;
        }
    };
    match a.json.as_deref() {
        Some("-") => match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("loadtest: json: {e}");
                return ExitCode::FAILURE;
            }
        },
        Some(path) => {
            print!("{}", report::table(&report));
            let written = serde_json::to_string_pretty(&report)
                .map_err(|e| e.to_string())
                .and_then(|j| std::fs::write(path, j).map_err(|e| e.to_string()));
            if let Err(e) = written {
                eprintln!("loadtest: writing {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
        None => print!("{}", report::table(&report)),
    }
    ExitCode::SUCCESS
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
