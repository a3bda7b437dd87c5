//! Per-step accounting (expected vs received by sequence number, latency histograms) and the
//! report: a human-readable table and JSON.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency histograms are in microseconds, 1 µs to 10 minutes, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts: this is not an input-driven path.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

/// Live counters of one rate step while it runs.
pub struct Step {
    /// Sequence numbers `[first_seq, end_seq)` were scheduled in this step.
    pub first_seq: u64,
    pub end_seq: u64,
    pub published: u64,
    pub publish_errors: u64,
    pub expected: u64,
    pub received: u64,
    pub duplicates: u64,
    pub latency: Histogram<u64>,
    /// How late each publish request left the tool relative to its schedule.
    pub send_lag: Histogram<u64>,
}

impl Step {
    pub fn new(first_seq: u64) -> Self {
        Self {
            first_seq,
            end_seq: first_seq,
            published: 0,
            publish_errors: 0,
            expected: 0,
            received: 0,
            duplicates: 0,
            latency: new_histogram(),
            send_lag: new_histogram(),
        }
    }

    /// Records one delivery `latency_ns` after its scheduled send time.
    pub fn record(&mut self, latency_ns: u64) {
        self.received += 1;
        let _ = self.latency.record((latency_ns / 1000).max(1));
    }
}

/// Latency summary in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// (percentile, ms) points for plotting the whole distribution.
    pub distribution: Vec<(f64, f64)>,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let points = [
            0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
        ];
        Self {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
            distribution: points
                .iter()
                .map(|p| (*p, ms(h.value_at_quantile(p / 100.0))))
                .collect(),
        }
    }
}

/// The finished result of one step.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    pub rate: f64,
    pub seconds: f64,
    pub published: u64,
    pub publish_errors: u64,
    pub expected: u64,
    pub received: u64,
    pub duplicates: u64,
    pub lost: u64,
    pub deliveries_per_s: f64,
    pub latency: Latency,
    pub send_lag_p99_ms: f64,
    pub server_cpu_s: f64,
    pub deliveries_per_core_s: f64,
    pub server_rss_bytes: u64,
    pub tool_cpu_s: f64,
    /// Tool CPU seconds per wall second: near 1.0 means the tool itself was saturated.
    pub tool_cpu_util: f64,
    /// No loss and p99 under the limit.
    pub passed: bool,
    /// Context switches of the server's threads over the step and its grace period (`/proc`).
    pub server_ctx_switches: u64,
    pub ctx_switches_per_delivery: Option<f64>,
    /// Sluicegate: `sse_writes_total / deliveries_total` over the step (1 / frames per syscall).
    pub sse_writes_per_delivery: Option<f64>,
    /// With `--perf`: every syscall the server made, per delivery received.
    pub syscalls_per_delivery: Option<f64>,
    /// With `--perf`: wake-ups the server's threads performed (`sched:sched_wakeup` in its
    /// context: mostly waking the readers it wrote to), per delivery received.
    pub wakeups_per_delivery: Option<f64>,
    /// Sluicegate: every `/metrics` series' change over the step, summed over shards.
    pub server_metrics: Option<BTreeMap<String, f64>>,
    /// With `--perf`: the raw `perf stat` counts over the step.
    pub perf: Option<BTreeMap<String, u64>>,
}

/// The result of one run (one subscriber population, one or more rate steps).
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub server: crate::flavor::Server,
    pub transport: crate::body::Transport,
    /// The addresses subscribers and publishers used (several: gateway instances).
    pub sub_addrs: Vec<String>,
    pub pub_addrs: Vec<String>,
    /// Subscribers still streaming at the end, per subscribe address (same order).
    pub streaming_per_addr: Vec<usize>,
    pub subscribers: usize,
    pub slow_subscribers: usize,
    pub topics: usize,
    pub event_bytes: usize,
    pub connected: usize,
    pub connect_failures: usize,
    pub disconnects: usize,
    pub connect_seconds: f64,
    pub server_rss_baseline_bytes: u64,
    pub server_rss_connected_bytes: u64,
    pub rss_per_connection_bytes: f64,
    pub server_rss_end_bytes: u64,
    pub server_processes: usize,
    /// Bytes the fast subscribers received while no event was published (heartbeats).
    pub idle_bytes_received: u64,
    pub idle_seconds: f64,
    pub steps: Vec<StepReport>,
    /// Index into `steps` of the highest-rate step that passed, if any.
    pub best_step: Option<usize>,
    pub tool_cpu_s: f64,
    pub wall_s: f64,
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// The human-readable table.
pub fn table(r: &RunReport) -> String {
    let mut s = format!(
        "server {:?} ({:?}): {} subscribers ({} slow) on {} topic(s), {} B events\n\
         connected {} (failed {}, later disconnected {}) in {:.1} s\n\
         server RSS: {:.1} MiB before, {:.1} MiB connected, {:.1} MiB at end \
         ({:.0} B per connection, {} processes)\n",
        r.server,
        r.transport,
        r.subscribers,
        r.slow_subscribers,
        r.topics,
        r.event_bytes,
        r.connected,
        r.connect_failures,
        r.disconnects,
        r.connect_seconds,
        mib(r.server_rss_baseline_bytes),
        mib(r.server_rss_connected_bytes),
        mib(r.server_rss_end_bytes),
        r.rss_per_connection_bytes,
        r.server_processes,
    );
    if r.idle_seconds > 0.0 {
        s.push_str(&format!(
            "idle {:.1} s: {} bytes received by subscribers (heartbeats)\n",
            r.idle_seconds, r.idle_bytes_received
        ));
    }
    s.push_str(
        "  rate/s  deliv/s     expected   received  lost  dup    p50ms   p90ms   p99ms  p99.9ms    maxms  srvCPU  deliv/core-s  toolCPU  ok\n",
    );
    for st in &r.steps {
        s.push_str(&format!(
            "{:>8.0} {:>8.0} {:>12} {:>10} {:>5} {:>4} {:>8.2} {:>7.2} {:>7.2} {:>8.2} {:>8.2} {:>6.2}s {:>13.0} {:>7.0}%  {}\n",
            st.rate,
            st.deliveries_per_s,
            st.expected,
            st.received,
            st.lost,
            st.duplicates,
            st.latency.p50_ms,
            st.latency.p90_ms,
            st.latency.p99_ms,
            st.latency.p999_ms,
            st.latency.max_ms,
            st.server_cpu_s,
            st.deliveries_per_core_s,
            st.tool_cpu_util * 100.0,
            if st.passed { "yes" } else { "NO" },
        ));
        let per = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        s.push_str(&format!(
            "          server per delivery: context switches {}, SSE writes {}, syscalls {}, \
             wake-ups {}\n",
            per(st.ctx_switches_per_delivery),
            per(st.sse_writes_per_delivery),
            per(st.syscalls_per_delivery),
            per(st.wakeups_per_delivery),
        ));
    }
    if let Some(b) = r.best_step.and_then(|i| r.steps.get(i)) {
        s.push_str(&format!(
            "highest sustained: {:.0} deliveries/s at {:.0} events/s\n",
            b.deliveries_per_s, b.rate
        ));
    }
    s.push_str(&format!(
        "load tool: {:.2} CPU s over {:.1} s wall\n",
        r.tool_cpu_s, r.wall_s
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_summary_in_ms() {
        let mut st = Step::new(0);
        for ms in 1..=100u64 {
            st.record(ms * 1_000_000);
        }
        let l = Latency::of(&st.latency);
        assert_eq!(st.received, 100);
        assert!((l.p50_ms - 50.0).abs() < 0.1, "{}", l.p50_ms);
        assert!((l.max_ms - 100.0).abs() < 0.1, "{}", l.max_ms);
        assert_eq!(l.distribution.len(), 13);
    }
}
