//! Per-stage latency histograms (`hdrhistogram`), one set per shard, exported in `/metrics` as
//! Prometheus summaries merged over shards:
//! - `publish`: a publish request read until its answer is ready (policy, the hop to the
//!   partition's owner, the durable log's commit, the fan-out to every shard);
//! - `fanout_first_write` / `fanout_last_write`: an event offered to a shard's subscribers
//!   until the writer's first and last write of it to a socket (the shard's queueing and
//!   fairness delay; a subscriber whose socket was full is written by its own session later
//!   and not counted here).
//!
//! Recorded once per publish and once per event per shard (never per delivery); each shard
//! locks only its own histograms, `/metrics` locks each briefly to merge.
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// A stage of an event's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Publish,
    FanoutFirstWrite,
    FanoutLastWrite,
    /// One webhook attempt: connect (or reuse) to the answer's end.
    WebhookAttempt,
    /// One sync hook call (publish or subscribe).
    Hook,
}

impl Stage {
    const ALL: [Stage; 5] = [
        Stage::Publish,
        Stage::FanoutFirstWrite,
        Stage::FanoutLastWrite,
        Stage::WebhookAttempt,
        Stage::Hook,
    ];

    fn name(self) -> &'static str {
        match self {
            Stage::Publish => "publish",
            Stage::FanoutFirstWrite => "fanout_first_write",
            Stage::FanoutLastWrite => "fanout_last_write",
            Stage::WebhookAttempt => "webhook_attempt",
            Stage::Hook => "hook",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Microseconds up to a minute, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds hdrhistogram accepts")
}

/// One shard's histograms.
pub struct StageLatencies {
    stages: [Mutex<Histogram<u64>>; Stage::ALL.len()],
}

impl Default for StageLatencies {
    fn default() -> Self {
        Self {
            stages: std::array::from_fn(|_| Mutex::new(histogram())),
        }
    }
}

impl StageLatencies {
    /// Record one `took` of `stage` (saturating at a minute).
    pub fn record(&self, stage: Stage, took: Duration) {
        let micros = (took.as_micros() as u64).clamp(1, 60_000_000);
        if let Ok(mut h) = self.stages[stage.index()].lock() {
            let _ = h.record(micros);
        }
    }
}

/// The quantiles exported.
const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

/// Append the summaries of every stage, merged over `shards`, in Prometheus text format.
pub fn render(shards: &[StageLatencies], out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP sluicegate_stage_seconds Latency of a stage of an event's path (publish: request to answer; fanout_*: offered to a shard's subscribers until the writer's first/last write; webhook_attempt: one webhook request to its answer; hook: one sync hook call), over every shard."
    );
    let _ = writeln!(out, "# TYPE sluicegate_stage_seconds summary");
    for stage in Stage::ALL {
        let mut merged = histogram();
        for shard in shards {
            if let Ok(h) = shard.stages[stage.index()].lock() {
                let _ = merged.add(&*h);
            }
        }
        let name = stage.name();
        for q in QUANTILES {
            let secs = merged.value_at_quantile(q) as f64 / 1e6;
            let _ = writeln!(
                out,
                "sluicegate_stage_seconds{{stage=\"{name}\",quantile=\"{q}\"}} {secs}"
            );
        }
        let sum = merged.mean() * merged.len() as f64 / 1e6;
        let _ = writeln!(
            out,
            "sluicegate_stage_seconds_sum{{stage=\"{name}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "sluicegate_stage_seconds_count{{stage=\"{name}\"}} {}",
            merged.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_merge_the_shards() {
        let shards = [StageLatencies::default(), StageLatencies::default()];
        for _ in 0..99 {
            shards[0].record(Stage::Publish, Duration::from_micros(100));
        }
        shards[1].record(Stage::Publish, Duration::from_millis(50));
        let mut out = String::new();
        render(&shards, &mut out);
        assert!(out.contains("# TYPE sluicegate_stage_seconds summary"));
        assert!(out.contains("sluicegate_stage_seconds_count{stage=\"publish\"} 100"));
        assert!(
            out.contains("sluicegate_stage_seconds{stage=\"publish\",quantile=\"0.5\"} 0.0001"),
            "{out}"
        );
        let p999 = out
            .lines()
            .find(|l| l.contains("stage=\"publish\",quantile=\"0.999\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .expect("p99.9");
        assert!((0.049..0.051).contains(&p999), "{p999}");
        assert!(out.contains("sluicegate_stage_seconds_count{stage=\"fanout_last_write\"} 0"));
    }
}
