//! A live stream connection, whatever its transport (SSE, WebSocket): write queued frames as the
//! socket takes them, hand what the client sends to the transport's [`Peer`], notice the client
//! leaving, refill from history while catching up, and close when cut off or draining.
//!
//! The whole session is one `poll_fn`, so reading, refilling and writing share one task and one
//! borrow of the socket: no split stream, no extra task per connection.
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use glommio::timer::Timer;

use crate::delivery::queue::MAX_SLICES;
use crate::delivery::sendmsg::AttachedSocket;
use crate::delivery::subscriber::{CutOffReason, SubState, Subscriber};
use crate::delivery::{backfill, log_backfill};
use crate::shard::context::ShardContext;
use crate::telemetry::ShardMetrics;

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEnd {
    ClientClosed,
    CutOff(CutOffReason),
    Drained,
    WriteError,
}

/// What a transport does with the client's side of a stream.
pub trait Peer {
    /// Where the client's bytes are read into (its size is per-connection memory).
    fn read_buffer(&mut self) -> &mut [u8];
    /// The first `n` bytes of the read buffer came from the client (SSE: ignored; WebSocket:
    /// frames to decode and answer).
    fn received(&mut self, n: usize, sub: &Rc<Subscriber>);
    /// The transport's own timers (WebSocket pings), polled on every wake-up of the session.
    fn poll_timers(&mut self, cx: &mut Context<'_>, sub: &Rc<Subscriber>);
}

/// SSE clients send nothing after their request; whatever arrives is read (to notice EOF) and
/// ignored.
pub struct SilentPeer {
    probe: [u8; 64],
}

impl Default for SilentPeer {
    fn default() -> Self {
        Self { probe: [0; 64] }
    }
}

impl Peer for SilentPeer {
    fn read_buffer(&mut self) -> &mut [u8] {
        &mut self.probe
    }
    fn received(&mut self, _n: usize, _sub: &Rc<Subscriber>) {}
    fn poll_timers(&mut self, _cx: &mut Context<'_>, _sub: &Rc<Subscriber>) {}
}

/// Run the session until it ends. The subscriber must already be registered with the shard.
/// A stream opened with a token that expires is closed at `expires_at`.
pub async fn run(
    ctx: &Rc<ShardContext>,
    stream: &mut TcpStream,
    sub: &Rc<Subscriber>,
    expires_at: Option<Instant>,
    peer: &mut impl Peer,
) -> SessionEnd {
    let socket = AttachedSocket::of(&*stream);
    sub.attach_socket(socket);
    let max_queue = ctx.config().sse.max_queue_bytes;
    // Refill from history when below a quarter of the queue limit, up to a half: keeps the
    // socket busy while never coming near the cut-off limit.
    let (low, high) = (max_queue / 4, max_queue / 2);
    let metrics = ctx.metrics();
    // How long a cut-off client gets to take its last bytes before the socket closes
    // (`sse.cut_off_grace_ms`). A draining client gets until the shard's drain deadline
    // instead: what it still has queued are events whose publish was acknowledged.
    let last_words_for = Duration::from_millis(ctx.config().sse.cut_off_grace_ms);
    let mut last_words: Option<Timer> = None;
    let mut expiry = expires_at.map(|at| Timer::new(at.saturating_duration_since(Instant::now())));
    // The end of an egress hold (`delay` mode) this task waits for.
    let mut hold: Option<(Instant, Timer)> = None;
    std::future::poll_fn(|cx| {
        // Each poll is a wake-up of this task: with the shard writer doing live writes, these
        // should be rare next to deliveries (see `delivery::writer`).
        ShardMetrics::add(&metrics.sse_session_wakes_total, 1);
        // EOF or an error means the client left.
        loop {
            match Pin::new(&mut *stream).poll_read(cx, peer.read_buffer()) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    return Poll::Ready(SessionEnd::ClientClosed)
                }
                Poll::Ready(Ok(n)) => peer.received(n, sub),
                Poll::Pending => break,
            }
        }
        sub.set_waker(cx.waker());
        peer.poll_timers(cx, sub);
        if let Some(timer) = expiry.as_mut() {
            if Pin::new(timer).poll(cx).is_ready() {
                expiry = None;
                sub.cut_off(CutOffReason::TokenExpired);
            }
        }
        loop {
            if let Some(until) = sub.held_until() {
                if Instant::now() < until {
                    // Over the egress limit: write nothing until the debt is repaid.
                    if hold.as_ref().is_none_or(|(at, _)| *at != until) {
                        hold = Some((
                            until,
                            Timer::new(until.saturating_duration_since(Instant::now())),
                        ));
                    }
                    if let Some((_, timer)) = hold.as_mut() {
                        if Pin::new(timer).poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                    }
                }
                hold = None;
                sub.release_hold();
            }
            if sub.state() == SubState::CatchingUp && sub.queued_bytes() < low.max(1) {
                let refill = sub.refill(&ctx.histories.borrow(), high.max(1), Instant::now());
                if !refill.gaps.is_empty() {
                    ShardMetrics::add(&metrics.resets_total, 1);
                }
                for (idx, from) in refill.backfill {
                    // Read back from the log: Kafka, or the durable embedded log.
                    if ctx.broker_link.is_some() {
                        glommio::spawn_local(backfill::run(ctx.clone(), sub.clone(), idx, from))
                            .detach();
                    } else {
                        let task = log_backfill::run(ctx.clone(), sub.clone(), idx, from);
                        glommio::spawn_local(task).detach();
                    }
                }
            }
            if sub.is_queue_empty() {
                sub.session_caught_up();
                return match sub.state() {
                    SubState::CutOff(why) => Poll::Ready(SessionEnd::CutOff(why)),
                    SubState::Draining => Poll::Ready(SessionEnd::Drained),
                    SubState::CatchingUp | SubState::Live => Poll::Pending,
                };
            }
            match sub.write_with(MAX_SLICES, |slices| socket.send(slices)) {
                Ok(n) => {
                    ShardMetrics::add(&metrics.sse_writes_total, 1);
                    ShardMetrics::add(&metrics.sse_bytes_written_total, n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Let glommio watch for room: its write tries the front slice once more and
                    // otherwise registers this task for writability.
                    let res = sub.write_with(1, |slices| {
                        match Pin::new(&mut *stream).poll_write(cx, &slices[0]) {
                            Poll::Ready(r) => r,
                            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                        }
                    });
                    match res {
                        Ok(_) => continue,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => return Poll::Ready(SessionEnd::WriteError),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Poll::Ready(SessionEnd::WriteError),
            }
        }
        // The socket is full. A client that was cut off gets a little time, not forever.
        if let SubState::CutOff(why) = sub.state() {
            let timer = last_words.get_or_insert_with(|| Timer::new(last_words_for));
            if Pin::new(timer).poll(cx).is_ready() {
                return Poll::Ready(SessionEnd::CutOff(why));
            }
        }
        Poll::Pending
    })
    .await
}
