//! The phases of one run: connect every subscriber, settle, then either hold idle connections
//! (heartbeats only) or run the rate steps, measuring the server and the tool around each.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll};
use sluicegate::codec::sse_parse::ParsedEvent;

use crate::counters::{self, Perf};
use crate::engine::{Config, Engine, MAX_HANDSHAKES};
use crate::procstat::{self_usage, tree_pids, tree_usage};
use crate::publisher::{Pending, PubConn};
use crate::report::{Latency, RunReport, Step, StepReport};
use crate::subs::{Sub, SubState};

/// Whether subscriber `i` is one of the slow ones: spread evenly over the population.
fn is_slow(i: usize, fraction: f64) -> bool {
    (((i + 1) as f64) * fraction).floor() > ((i as f64) * fraction).floor()
}

/// Runs the whole measurement described by `cfg`.
pub fn run(cfg: &Config) -> Result<RunReport, String> {
    let t0 = Instant::now();
    let tool0 = self_usage();
    let baseline = tree_usage(&cfg.server_pids);
    let subs = (0..cfg.subscribers)
        .map(|i| {
            let topic = i % cfg.topics.max(1);
            let name = format!("{}{}", cfg.topic_prefix, topic);
            let host = cfg.sub_addr(i).to_string();
            let (request, ws) = cfg.server.subscribe_request(&host, &name, cfg.transport, i);
            Sub::new(topic, is_slow(i, cfg.slow_fraction), request, ws)
        })
        .collect();
    let mut e = Engine {
        cfg,
        t0,
        poll: Poll::new().map_err(|e| format!("poll: {e}"))?,
        events: Events::with_capacity(4096),
        subs,
        pubs: Vec::new(),
        queue: VecDeque::new(),
        steps: Vec::new(),
        next_seq: 0,
        buf: vec![0; 256 * 1024],
        scratch: Vec::new(),
        parsed: Vec::<ParsedEvent>::new(),
        ready: 0,
        failed: 0,
        handshaking: 0,
        disconnects: 0,
        reconnects: 0,
        fast_ready_per_topic: vec![0; cfg.topics.max(1)],
        received_total: 0,
        last_progress: Instant::now(),
        last_received: 0,
        first_error: None,
        next_pub: 0,
    };
    connect_all(&mut e)?;
    let connect_seconds = t0.elapsed().as_secs_f64();
    settle(&mut e, cfg.settle)?;
    let connected = tree_usage(&cfg.server_pids);

    for j in 0..cfg.pub_conns.max(1) {
        let addr = cfg.pub_addr(j);
        let mut conn = PubConn::connect(addr).map_err(|e| format!("publisher {addr}: {e}"))?;
        if let Some(s) = conn.stream.as_mut() {
            e.poll
                .registry()
                .register(s, e.pub_token(j), Interest::READABLE | Interest::WRITABLE)
                .map_err(|e| e.to_string())?;
        }
        e.pubs.push(conn);
    }

    let (mut idle_bytes, mut idle_seconds) = (0, 0.0);
    let mut reports = Vec::new();
    if cfg.rates.is_empty() {
        let before: u64 = fast_bytes(&e);
        let start = Instant::now();
        while start.elapsed() < cfg.hold {
            e.pump(Duration::from_millis(50))?;
            e.progress("idle");
        }
        idle_seconds = start.elapsed().as_secs_f64();
        idle_bytes = fast_bytes(&e) - before;
    } else if e.ready > 0 {
        for &rate in &cfg.rates {
            let r = run_step(&mut e, rate)?;
            let passed = r.passed;
            reports.push(r);
            if !passed && cfg.stop_on_fail {
                break;
            }
        }
    }
    let end = tree_usage(&cfg.server_pids);
    let best_step = reports.iter().rposition(|r| r.passed);
    let ready = e.ready;
    let rss_per_connection_bytes = if ready > 0 {
        (connected.rss_bytes as f64 - baseline.rss_bytes as f64) / ready as f64
    } else {
        0.0
    };
    if let Some(err) = &e.first_error {
        eprintln!("note: first error seen: {err}");
    }
    let mut streaming_per_addr = vec![0; cfg.sub_addrs.len()];
    for (i, s) in e.subs.iter().enumerate() {
        if s.state == SubState::Streaming {
            streaming_per_addr[i % cfg.sub_addrs.len()] += 1;
        }
    }
    Ok(RunReport {
        server: cfg.server,
        transport: cfg.transport,
        sub_addrs: cfg.sub_addrs.iter().map(ToString::to_string).collect(),
        pub_addrs: cfg.pub_addrs.iter().map(ToString::to_string).collect(),
        streaming_per_addr,
        subscribers: cfg.subscribers,
        slow_subscribers: e.subs.iter().filter(|s| s.slow).count(),
        topics: cfg.topics,
        event_bytes: cfg.event_bytes,
        connected: ready,
        connect_failures: e.failed,
        disconnects: e.disconnects,
        connect_seconds,
        server_rss_baseline_bytes: baseline.rss_bytes,
        server_rss_connected_bytes: connected.rss_bytes,
        rss_per_connection_bytes,
        server_rss_end_bytes: end.rss_bytes,
        server_processes: end.processes,
        idle_bytes_received: idle_bytes,
        idle_seconds,
        steps: reports,
        best_step,
        tool_cpu_s: self_usage().cpu_s - tool0.cpu_s,
        wall_s: t0.elapsed().as_secs_f64(),
    })
}

fn fast_bytes(e: &Engine) -> u64 {
    e.subs.iter().filter(|s| !s.slow).map(|s| s.bytes).sum()
}

/// Opens every subscriber at `connect_rate` per second with bounded handshakes in flight.
fn connect_all(e: &mut Engine) -> Result<(), String> {
    let start = Instant::now();
    let n = e.subs.len();
    let mut next = 0;
    while e.ready + e.failed < n && start.elapsed() < e.cfg.connect_timeout {
        let allowed = ((e.cfg.connect_rate * start.elapsed().as_secs_f64()) as usize + 64).min(n);
        while next < allowed && e.handshaking < MAX_HANDSHAKES {
            let addr = e.cfg.sub_addr(next);
            let registry = e.poll.registry();
            match e.subs.get_mut(next).map(|s| s.connect(addr)) {
                Some(Ok(stream)) => {
                    registry
                        .register(
                            stream,
                            mio::Token(next),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .map_err(|e| format!("register: {e}"))?;
                    e.handshaking += 1;
                }
                Some(Err(err)) => {
                    e.failed += 1;
                    e.note_error(format!("connect: {err}"));
                }
                None => {}
            }
            next += 1;
        }
        e.pump(Duration::from_millis(2))?;
        e.progress("connecting");
    }
    // Whatever did not finish in time counts as failed and is closed.
    for i in 0..n {
        let pending = e.subs.get(i).is_some_and(|s| {
            matches!(
                s.state,
                SubState::Idle | SubState::Connecting | SubState::Head
            )
        });
        if pending {
            if let Some(sub) = e.subs.get_mut(i) {
                if let Some(mut s) = sub.stream.take() {
                    let _ = e.poll.registry().deregister(&mut s);
                }
                sub.state = SubState::Closed;
            }
            e.failed += 1;
        }
    }
    Ok(())
}

fn settle(e: &mut Engine, d: Duration) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < d {
        e.pump(Duration::from_millis(20))?;
        e.progress("settling");
    }
    Ok(())
}

/// One open-loop step at `rate` events/s for `cfg.step`, then up to `cfg.grace` to drain.
fn run_step(e: &mut Engine, rate: f64) -> Result<StepReport, String> {
    let cfg = e.cfg;
    let pids = tree_pids(&cfg.server_pids);
    let perf = if cfg.perf {
        Perf::start(&pids, &cfg.perf_events)
    } else {
        None
    };
    if perf.is_some() {
        // perf needs a moment to attach; keep reading (heartbeats) meanwhile so nothing is
        // timed while it starts. What it counts in this pause is idle traffic only.
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(300) {
            e.pump(Duration::from_millis(10))?;
        }
    }
    let metrics0 = counters::scrape_all(&cfg.metrics_addrs);
    let ctx0 = counters::ctx_switches(&pids);
    e.steps.push(Step::new(e.next_seq));
    let srv0 = tree_usage(&cfg.server_pids);
    let tool0 = self_usage();
    let wall0 = Instant::now();
    let start_ns = e.now_ns();
    let interval_ns = (1e9 / rate.max(0.001)) as u64;
    let end_ns = start_ns + cfg.step.as_nanos() as u64;
    let topics = cfg.topics.max(1) as u64;
    let mut i = 0u64;
    loop {
        let now = e.now_ns();
        // Schedule every event whose time has come; its send time is fixed now, not when a
        // connection frees up.
        while start_ns + i * interval_ns <= now.min(end_ns) && start_ns + i * interval_ns < end_ns {
            let seq = e.next_seq;
            let topic = (seq % topics) as usize;
            let expect = e.fast_ready_per_topic.get(topic).copied().unwrap_or(0);
            if let Some(st) = e.steps.last_mut() {
                st.expected += expect;
                st.end_seq = seq + 1;
            }
            e.queue.push_back(Pending {
                seq,
                topic,
                sched_ns: start_ns + i * interval_ns,
            });
            e.next_seq += 1;
            i += 1;
        }
        if now >= end_ns {
            break;
        }
        let next_due = (start_ns + i * interval_ns).min(end_ns);
        let wait =
            Duration::from_nanos(next_due.saturating_sub(now)).min(Duration::from_millis(50));
        e.pump(wait)?;
        e.progress(&format!("rate {rate:.0}/s"));
    }
    // Drain: until every expected delivery arrived (and no publish is pending) or grace ends.
    let grace_start = Instant::now();
    while grace_start.elapsed() < cfg.grace {
        let done = e.queue.is_empty()
            && e.pubs.iter().all(|p| p.idle())
            && e.steps.last().is_some_and(|s| s.received >= s.expected);
        if done {
            break;
        }
        e.pump(Duration::from_millis(5))?;
        e.progress("draining");
    }
    // Events never sent by the end of the grace period are dropped from the queue: they were
    // scheduled, so they count as lost.
    e.queue.clear();
    let seconds = wall0.elapsed().as_secs_f64();
    let srv1 = tree_usage(&cfg.server_pids);
    let tool1 = self_usage();
    let ctx = counters::ctx_switches(&pids).saturating_sub(ctx0);
    let server_metrics = match (metrics0, counters::scrape_all(&cfg.metrics_addrs)) {
        (Some(Ok(a)), Some(Ok(b))) => Some(counters::delta(&a, &b)),
        (Some(Err(err)), _) | (_, Some(Err(err))) => {
            e.note_error(err);
            None
        }
        _ => None,
    };
    let perf = perf.and_then(Perf::stop);
    let Some(st) = e.steps.last() else {
        return Err("no step".into());
    };
    let latency = Latency::of(&st.latency);
    let lost = st.expected.saturating_sub(st.received);
    let server_cpu_s = srv1.cpu_s - srv0.cpu_s;
    let passed = lost == 0 && st.publish_errors == 0 && latency.p99_ms <= cfg.p99_limit_ms;
    let per_delivery = |n: f64| (st.received > 0).then(|| n / st.received as f64);
    // Sluicegate's own ratio uses its own delivery count (frames queued), not what arrived.
    let sse_writes_per_delivery = server_metrics.as_ref().and_then(|m| {
        let d = m.get("sluicegate_deliveries_total").copied()?;
        (d > 0.0).then(|| m.get("sluicegate_sse_writes_total").copied().unwrap_or(0.0) / d)
    });
    Ok(StepReport {
        rate,
        seconds,
        published: st.published,
        publish_errors: st.publish_errors,
        expected: st.expected,
        received: st.received,
        duplicates: st.duplicates,
        lost,
        deliveries_per_s: st.received as f64 / seconds,
        send_lag_p99_ms: st.send_lag.value_at_quantile(0.99) as f64 / 1000.0,
        latency,
        server_cpu_s,
        deliveries_per_core_s: if server_cpu_s > 0.0 {
            st.received as f64 / server_cpu_s
        } else {
            0.0
        },
        server_rss_bytes: srv1.rss_bytes,
        tool_cpu_s: tool1.cpu_s - tool0.cpu_s,
        tool_cpu_util: (tool1.cpu_s - tool0.cpu_s) / seconds,
        server_ctx_switches: ctx,
        ctx_switches_per_delivery: per_delivery(ctx as f64),
        sse_writes_per_delivery,
        syscalls_per_delivery: perf
            .as_ref()
            .and_then(|p| per_delivery(*p.get("raw_syscalls:sys_enter")? as f64)),
        wakeups_per_delivery: perf
            .as_ref()
            .and_then(|p| per_delivery(*p.get("sched:sched_wakeup")? as f64)),
        server_metrics,
        perf,
        passed,
    })
}

#[cfg(test)]
mod tests {
    use super::is_slow;

    #[test]
    fn slow_fraction_is_spread_exactly() {
        let n = (0..1000).filter(|i| is_slow(*i, 0.1)).count();
        assert_eq!(n, 100);
        assert_eq!((0..1000).filter(|i| is_slow(*i, 0.0)).count(), 0);
        assert!(!is_slow(0, 0.1) && is_slow(9, 0.1));
    }
}
