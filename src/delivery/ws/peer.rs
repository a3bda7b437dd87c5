//! The client's side of a WebSocket stream: decode its frames (with `codec::ws::client`),
//! answer pings, notice pongs, ping it every `ws.ping_interval_ms` and close it when a ping
//! goes unanswered, hand its JSON messages to `ops`, and close with the right code when it
//! breaks the protocol or closes itself.
use std::cell::Cell;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Context;
use std::time::Duration;

use glommio::timer::Timer;

use super::framing::POLICY_VIOLATION;
use super::ops;
use crate::codec::ws::client::{ClientError, ClientFrames, ClientMessage};
use crate::codec::ws::frame::ping_frame;
use crate::delivery::session::Peer;
use crate::delivery::subscriber::{CutOffReason, Subscriber};
use crate::policy::principal::Principal;
use crate::shard::context::ShardContext;
use crate::telemetry::ShardMetrics;

/// Bytes read from the socket at a time. This is per-connection memory, and a subscriber
/// mostly sends 6-byte pongs: 512 put an idle WebSocket 1,164 B over an idle SSE connection,
/// 128 puts it 786 B over (`loadtest/results/2026-11-30-ws`). Larger messages arrive over
/// several reads and are put together by the decoder.
const READ_CHUNK: usize = 128;

/// Requests of one client being handled at once; more are refused with 503 until some finish.
const MAX_IN_FLIGHT: usize = 64;

/// Close code: the client sent a data type this gateway does not take.
const UNSUPPORTED_DATA: u16 = 1003;

/// Whether events go out as JSON envelopes (and client messages are JSON requests) or raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Json,
    Raw,
}

/// One WebSocket client.
pub struct WsPeer {
    ctx: Rc<ShardContext>,
    principal: Arc<Principal>,
    client: IpAddr,
    mode: Mode,
    frames: ClientFrames,
    read: [u8; READ_CHUNK],
    ping_every: Duration,
    ping_timer: Timer,
    awaiting_pong: bool,
    /// The stream is closing: whatever the client sends now is ignored.
    closing: bool,
    /// Requests of this client being handled.
    in_flight: Rc<Cell<usize>>,
}

impl WsPeer {
    pub fn new(
        ctx: Rc<ShardContext>,
        principal: Arc<Principal>,
        client: IpAddr,
        mode: Mode,
    ) -> Self {
        let ws = &ctx.config().ws;
        let ping_every = Duration::from_millis(ws.ping_interval_ms);
        let frames = ClientFrames::new(ws.max_message_bytes, ws.max_frame_bytes);
        Self {
            ctx,
            principal,
            client,
            mode,
            frames,
            read: [0; READ_CHUNK],
            ping_every,
            ping_timer: Timer::new(ping_every),
            awaiting_pong: false,
            closing: false,
            in_flight: Rc::new(Cell::new(0)),
        }
    }

    /// End the stream with `code`: stop sending events, send the close frame, close.
    fn close(&mut self, sub: &Subscriber, code: u16, reason: &'static str) {
        self.closing = true;
        sub.cut_off(CutOffReason::Protocol(code, reason));
    }

    fn on_message(&mut self, message: ClientMessage, sub: &Rc<Subscriber>) {
        match message {
            ClientMessage::Text(text) => {
                ShardMetrics::add(&self.ctx.metrics().ws_messages_received_total, 1);
                if self.mode == Mode::Json {
                    // Requests run concurrently (a publish to Kafka waits for the broker), but
                    // a client that does not wait for its acks gets a bounded number of them
                    // in flight, as an HTTP connection has one.
                    if self.in_flight.get() >= MAX_IN_FLIGHT {
                        ops::refuse_busy(sub, &text, MAX_IN_FLIGHT);
                        return;
                    }
                    self.in_flight.set(self.in_flight.get() + 1);
                    let (ctx, principal) = (self.ctx.clone(), self.principal.clone());
                    let (client, sub) = (self.client, sub.clone());
                    let in_flight = self.in_flight.clone();
                    glommio::spawn_local(async move {
                        ops::handle(&ctx, &principal, client, &sub, &text).await;
                        in_flight.set(in_flight.get() - 1);
                    })
                    .detach();
                }
                // Raw mode takes no requests: what a raw client sends is ignored.
            }
            ClientMessage::Binary(_) => self.close(
                sub,
                UNSUPPORTED_DATA,
                "binary messages are not accepted; send JSON text",
            ),
            ClientMessage::Ping => {}
            ClientMessage::Pong => self.awaiting_pong = false,
            ClientMessage::Close(code) => {
                // Echo the client's code (1000 when it gave none), then close.
                let code = code.map_or(1000, |(c, _)| c);
                self.close(sub, code, "");
            }
        }
    }
}

/// The reason sent with the close code of a client's protocol error.
fn reason_of(err: &ClientError) -> &'static str {
    match err {
        ClientError::Protocol(what) => what,
        ClientError::InvalidUtf8 => "invalid UTF-8 in a text message",
        ClientError::TooBig { .. } => {
            "message too big: see ws.max_message_bytes and ws.max_frame_bytes"
        }
        ClientError::Internal(_) => "internal error",
    }
}

impl Peer for WsPeer {
    fn read_buffer(&mut self) -> &mut [u8] {
        &mut self.read
    }

    fn received(&mut self, n: usize, sub: &Rc<Subscriber>) {
        if self.closing {
            return;
        }
        self.frames.feed(&self.read[..n]);
        loop {
            match self.frames.next() {
                Ok(None) => break,
                Ok(Some(message)) => {
                    self.on_message(message, sub);
                    if self.closing {
                        return;
                    }
                }
                Err(err) => {
                    let code = err.close_code();
                    self.close(sub, code, reason_of(&err));
                    return;
                }
            }
        }
        // Pongs for the pings just read.
        if let Some(out) = self.frames.take_output() {
            sub.push_control(out);
        }
    }

    fn poll_timers(&mut self, cx: &mut Context<'_>, sub: &Rc<Subscriber>) {
        if self.closing {
            return;
        }
        while Pin::new(&mut self.ping_timer).poll(cx).is_ready() {
            if self.awaiting_pong {
                self.close(sub, POLICY_VIOLATION, "no pong within ws.ping_interval_ms");
                return;
            }
            self.awaiting_pong = true;
            sub.push_control(ping_frame(b""));
            self.ping_timer = Timer::new(self.ping_every);
        }
    }
}
