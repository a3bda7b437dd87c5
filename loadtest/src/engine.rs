//! The single-threaded event loop: connects the subscribers, then runs rate steps, scheduling
//! each event open-loop (its send time fixed in advance and written into the payload) and
//! accounting every delivery against the step its sequence number belongs to.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use sluicegate::codec::sse_parse::ParsedEvent;

use crate::body::Transport;
use crate::flavor::{payload, Server};
use crate::publisher::{Pending, PubConn, PubOutcome};
use crate::report::Step;
use crate::subs::{Sub, SubState};

/// Everything one run needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub server: Server,
    pub transport: Transport,
    /// Subscriber i connects to `sub_addrs[i % len]` (never empty).
    pub sub_addrs: Vec<SocketAddr>,
    /// Publisher connection j connects to `pub_addrs[j % len]` (never empty).
    pub pub_addrs: Vec<SocketAddr>,
    pub subscribers: usize,
    pub topics: usize,
    pub topic_prefix: String,
    pub event_bytes: usize,
    /// Events per second of each step; empty = idle run (hold the connections for `hold`).
    pub rates: Vec<f64>,
    pub step: Duration,
    pub grace: Duration,
    pub settle: Duration,
    pub hold: Duration,
    pub slow_fraction: f64,
    pub pub_conns: usize,
    pub connect_rate: f64,
    pub connect_timeout: Duration,
    pub server_pids: Vec<u32>,
    /// Where Sluicegate's `/metrics` is scraped around each step, summed over the addresses
    /// (empty: other servers).
    pub metrics_addrs: Vec<SocketAddr>,
    /// Count syscalls, context switches and wake-ups of the server with `perf stat` per step.
    pub perf: bool,
    /// Extra `perf stat` events (comma-separated) counted with `perf`.
    pub perf_events: String,
    pub p99_limit_ms: f64,
    pub stop_on_fail: bool,
    pub progress: bool,
}

/// Most handshakes in flight at once, so connecting thousands does not flood the listen queue.
pub(crate) const MAX_HANDSHAKES: usize = 512;
/// Publisher connections replaced after breaking, at most, before the run gives up.
const MAX_RECONNECTS: usize = 1000;

pub(crate) struct Engine<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) t0: Instant,
    pub(crate) poll: Poll,
    pub(crate) events: Events,
    pub(crate) subs: Vec<Sub>,
    pub(crate) pubs: Vec<PubConn>,
    pub(crate) queue: VecDeque<Pending>,
    pub(crate) steps: Vec<Step>,
    pub(crate) next_seq: u64,
    pub(crate) buf: Vec<u8>,
    pub(crate) scratch: Vec<u8>,
    pub(crate) parsed: Vec<ParsedEvent>,
    pub(crate) ready: usize,
    pub(crate) failed: usize,
    pub(crate) handshaking: usize,
    pub(crate) disconnects: usize,
    pub(crate) reconnects: usize,
    pub(crate) fast_ready_per_topic: Vec<u64>,
    pub(crate) received_total: u64,
    pub(crate) last_progress: Instant,
    pub(crate) last_received: u64,
    pub(crate) first_error: Option<String>,
    /// The publisher connection `dispatch_queue` tries first (rotates with several publish
    /// addresses).
    pub(crate) next_pub: usize,
}

impl Config {
    /// The address of subscriber `i`.
    pub fn sub_addr(&self, i: usize) -> SocketAddr {
        self.sub_addrs[i % self.sub_addrs.len()]
    }

    /// The address of publisher connection `j`.
    pub fn pub_addr(&self, j: usize) -> SocketAddr {
        self.pub_addrs[j % self.pub_addrs.len()]
    }
}

impl<'a> Engine<'a> {
    pub(crate) fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    pub(crate) fn pub_token(&self, j: usize) -> Token {
        Token(self.subs.len() + j)
    }

    pub(crate) fn note_error(&mut self, e: String) {
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }

    /// Sends what is due, polls once (up to `timeout`) and handles every readiness event, then
    /// feeds idle publisher connections from the queue again.
    pub(crate) fn pump(&mut self, timeout: Duration) -> Result<(), String> {
        // Events queued since the last poll leave before the tool sleeps.
        self.dispatch_queue()?;
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                (
                    e.token().0,
                    e.is_readable() || e.is_read_closed() || e.is_error(),
                    e.is_writable(),
                )
            })
            .collect();
        let n_subs = self.subs.len();
        for (tok, readable, writable) in ready {
            if tok < n_subs {
                self.on_sub(tok, readable, writable);
            } else {
                self.on_pub(tok - n_subs, readable, writable)?;
            }
        }
        self.dispatch_queue()
    }

    fn on_sub(&mut self, i: usize, readable: bool, writable: bool) {
        let now = self.now_ns();
        let max_seq = self.next_seq;
        let Engine {
            subs,
            steps,
            buf,
            scratch,
            parsed,
            received_total,
            ..
        } = self;
        let Some(sub) = subs.get_mut(i) else {
            return;
        };
        let was = sub.state;
        let mut outcome = Default::default();
        if writable && sub.state == SubState::Streaming {
            // Pongs the socket did not take when they were made.
            if let Err(e) = sub.flush_outbox() {
                outcome = crate::subs::ReadOutcome {
                    closed: true,
                    error: Some(e),
                    became_ready: false,
                };
                sub.state = SubState::Closed;
            }
        }
        if writable && sub.state == SubState::Connecting {
            if let Err(e) = sub.on_writable() {
                outcome = crate::subs::ReadOutcome {
                    closed: true,
                    error: Some(e),
                    became_ready: false,
                };
                sub.state = SubState::Closed;
            }
        }
        if readable && !outcome.closed {
            outcome = sub.on_readable(buf, scratch, parsed, max_seq, |seq, sched, fresh| {
                let idx = steps.partition_point(|s| s.first_seq <= seq);
                if let Some(step) = idx.checked_sub(1).and_then(|k| steps.get_mut(k)) {
                    if fresh {
                        step.record(now.saturating_sub(sched));
                        *received_total += 1;
                    } else {
                        step.duplicates += 1;
                    }
                }
            });
        }
        let (topic, slow) = (sub.topic, sub.slow);
        if outcome.became_ready {
            self.ready += 1;
            self.handshaking = self.handshaking.saturating_sub(1);
            if slow {
                // A slow consumer never reads again: stop hearing about it.
                if let Some(s) = self.subs.get_mut(i).and_then(|s| s.stream.as_mut()) {
                    let _ = self.poll.registry().deregister(s);
                }
            } else if let Some(c) = self.fast_ready_per_topic.get_mut(topic) {
                *c += 1;
            }
        }
        if outcome.closed {
            if let Some(mut s) = self.subs.get_mut(i).and_then(|s| s.stream.take()) {
                let _ = self.poll.registry().deregister(&mut s);
            }
            if was == SubState::Streaming || outcome.became_ready {
                self.disconnects += 1;
            } else {
                self.failed += 1;
                self.handshaking = self.handshaking.saturating_sub(1);
            }
            if let Some(e) = outcome.error {
                self.note_error(format!("subscriber {i}: {e}"));
            }
        }
    }

    fn apply_pub_outcome(&mut self, j: usize, out: PubOutcome) -> Result<(), String> {
        let lost_publish = !out.failed.is_empty();
        for seq in out.ok {
            if let Some(st) = self.step_of(seq) {
                st.published += 1;
            }
        }
        for seq in out.failed.iter().copied() {
            if let Some(st) = self.step_of(seq) {
                st.publish_errors += 1;
            }
        }
        if out.broken {
            // A server may close after each answer (Pushpin's publish API does): that is a
            // reconnect, not a failure. Only breaks that lost a publish count toward the limit.
            if lost_publish {
                if let Some(e) = out.error {
                    self.note_error(e);
                }
                self.reconnects += 1;
            }
            if self.reconnects > MAX_RECONNECTS {
                return Err(format!(
                    "publisher connections broke {MAX_RECONNECTS} times: {}",
                    self.first_error.clone().unwrap_or_default()
                ));
            }
            let tok = self.pub_token(j);
            let mut conn = PubConn::connect(self.cfg.pub_addr(j)).map_err(|e| e.to_string())?;
            if let Some(s) = conn.stream.as_mut() {
                self.poll
                    .registry()
                    .register(s, tok, Interest::READABLE | Interest::WRITABLE)
                    .map_err(|e| e.to_string())?;
            }
            if let Some(old) = self.pubs.get_mut(j) {
                if let Some(mut s) = old.stream.take() {
                    let _ = self.poll.registry().deregister(&mut s);
                }
                *old = conn;
            }
        }
        Ok(())
    }

    fn step_of(&mut self, seq: u64) -> Option<&mut Step> {
        let idx = self.steps.partition_point(|s| s.first_seq <= seq);
        idx.checked_sub(1).and_then(|k| self.steps.get_mut(k))
    }

    fn on_pub(&mut self, j: usize, readable: bool, writable: bool) -> Result<(), String> {
        let Engine { pubs, buf, .. } = self;
        let Some(conn) = pubs.get_mut(j) else {
            return Ok(());
        };
        let out = if readable {
            conn.on_readable(buf)
        } else if writable {
            conn.flush()
        } else {
            PubOutcome::default()
        };
        self.apply_pub_outcome(j, out)
    }

    fn dispatch_queue(&mut self) -> Result<(), String> {
        let mut data = String::new();
        let n = self.pubs.len();
        // One address: the first idle connection takes the event, as always (results stay
        // comparable with earlier runs). Several: the search starts after the connection used
        // last, so events go to the addresses in turn even when one connection could carry
        // them all.
        let first = if self.cfg.pub_addrs.len() > 1 {
            self.next_pub
        } else {
            0
        };
        for j in (0..n).map(|k| (first + k) % n) {
            if self.queue.is_empty() {
                break;
            }
            if !self.pubs.get(j).is_some_and(|c| c.idle()) {
                continue;
            }
            let Some(ev) = self.queue.pop_front() else {
                break;
            };
            payload(ev.seq, ev.sched_ns, self.cfg.event_bytes, &mut data);
            let topic = format!("{}{}", self.cfg.topic_prefix, ev.topic);
            let server = self.cfg.server;
            let host = self.cfg.pub_addr(j).to_string();
            self.next_pub = (j + 1) % n;
            let lag = self.now_ns().saturating_sub(ev.sched_ns);
            if let Some(st) = self.step_of(ev.seq) {
                let _ = st.send_lag.record((lag / 1000).max(1));
            }
            let out = match self.pubs.get_mut(j) {
                Some(conn) => {
                    conn.send(ev.seq, |o| server.publish_request(&host, &topic, &data, o))
                }
                None => continue,
            };
            self.apply_pub_outcome(j, out)?;
        }
        Ok(())
    }

    pub(crate) fn progress(&mut self, phase: &str) {
        if !self.cfg.progress || self.last_progress.elapsed() < Duration::from_secs(1) {
            return;
        }
        let dt = self.last_progress.elapsed().as_secs_f64();
        let rate = (self.received_total - self.last_received) as f64 / dt;
        self.last_progress = Instant::now();
        self.last_received = self.received_total;
        let p99 = self
            .steps
            .last()
            .map(|s| s.latency.value_at_quantile(0.99) as f64 / 1000.0)
            .unwrap_or(0.0);
        eprintln!(
            "[{:6.1}s] {phase}: conns {}/{} (failed {}, dropped {}) seq {} delivered {} ({:.0}/s) p99 {:.2} ms queue {}",
            self.t0.elapsed().as_secs_f64(),
            self.ready,
            self.subs.len(),
            self.failed,
            self.disconnects,
            self.next_seq,
            self.received_total,
            rate,
            p99,
            self.queue.len(),
        );
    }
}
