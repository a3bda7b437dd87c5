//! What the webhook sink counts between two snapshots: requests, bytes, connections and the
//! publish-to-receipt latency histogram, and the JSON line it reports them as.

use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::pubbench::LatencyUs;
use crate::report::new_histogram;

pub struct Stats {
    since: Instant,
    /// Requests received since the sink started (never reset).
    pub total_requests: u64,
    requests: u64,
    stamped: u64,
    wire_bytes: u64,
    body_bytes: u64,
    /// Receipt minus send time, microseconds (the histogram's unit).
    latency: Histogram<u64>,
    /// Stamps in the future (clock step): recorded as 0, counted here.
    negative: u64,
    accepted: u64,
    closed: u64,
    /// Never reset, so `open` stays right across snapshots.
    accepted_total: u64,
    closed_total: u64,
    open_max: u64,
    pub accept_errors: u64,
    pub bad_requests: u64,
    pub first_error: Option<String>,
}

/// One report line.
#[derive(Serialize)]
pub struct SinkReport {
    pub mode: &'static str,
    /// Seconds since the last `snap` (or the start).
    pub elapsed_s: f64,
    /// Requests received (answered, unless in blackhole mode).
    pub requests: u64,
    pub requests_per_s: f64,
    pub total_requests: u64,
    /// Requests whose body carried a send time (these make the latency figures).
    pub stamped: u64,
    pub wire_bytes: u64,
    pub body_bytes: u64,
    /// Publish (scheduled send) to receipt.
    pub latency_us: LatencyUs,
    pub negative_latencies: u64,
    /// Connections accepted and closed in this period, open now, most open at once in it.
    pub accepted: u64,
    pub closed: u64,
    pub open: u64,
    pub open_max: u64,
    pub accept_errors: u64,
    pub bad_requests: u64,
    pub first_error: Option<String>,
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            since: Instant::now(),
            total_requests: 0,
            requests: 0,
            stamped: 0,
            wire_bytes: 0,
            body_bytes: 0,
            latency: new_histogram(),
            negative: 0,
            accepted: 0,
            closed: 0,
            accepted_total: 0,
            closed_total: 0,
            open_max: 0,
            accept_errors: 0,
            bad_requests: 0,
            first_error: None,
        }
    }

    /// One complete request of `wire` bytes with a `body` bytes body and maybe a send stamp.
    pub fn record(&mut self, wire: usize, body: usize, stamp: Option<u64>, now_ns: u64) {
        self.requests += 1;
        self.total_requests += 1;
        self.wire_bytes += wire as u64;
        self.body_bytes += body as u64;
        if let Some(sent) = stamp {
            self.stamped += 1;
            if sent > now_ns {
                self.negative += 1;
            }
            // saturating_record clamps to the histogram's range (10 minutes).
            self.latency
                .saturating_record((now_ns.saturating_sub(sent) / 1000).max(1));
        }
    }

    pub fn on_accept(&mut self) {
        self.accepted += 1;
        self.accepted_total += 1;
        self.open_max = self.open_max.max(self.accepted_total - self.closed_total);
    }

    pub fn on_close(&mut self) {
        self.closed += 1;
        self.closed_total += 1;
    }

    /// Start counting afresh (the totals and the connections open now carry over).
    pub fn reset(&mut self) {
        *self = Stats {
            total_requests: self.total_requests,
            accepted_total: self.accepted_total,
            closed_total: self.closed_total,
            open_max: self.accepted_total - self.closed_total,
            first_error: self.first_error.take(),
            ..Stats::new()
        };
    }

    pub fn report(&self, mode: &'static str) -> SinkReport {
        let elapsed = self.since.elapsed().as_secs_f64();
        SinkReport {
            mode,
            elapsed_s: elapsed,
            requests: self.requests,
            requests_per_s: if elapsed > 0.0 {
                self.requests as f64 / elapsed
            } else {
                0.0
            },
            total_requests: self.total_requests,
            stamped: self.stamped,
            wire_bytes: self.wire_bytes,
            body_bytes: self.body_bytes,
            latency_us: LatencyUs::of(&self.latency),
            negative_latencies: self.negative,
            accepted: self.accepted,
            closed: self.closed,
            open: self.accepted_total - self.closed_total,
            open_max: self.open_max,
            accept_errors: self.accept_errors,
            bad_requests: self.bad_requests,
            first_error: self.first_error.clone(),
        }
    }
}
