//! Client-to-server frames: bytes from the socket in, messages out, control replies (pongs,
//! the close reply) queued as bytes for the connection to send.
//!
//! The protocol rules (masking, fragmentation, UTF-8 across fragments, control frames, the
//! closing handshake, size limits) are tungstenite's `WebSocketContext` in the server role,
//! driven here over two in-memory buffers instead of a socket: `feed` appends to the input,
//! `next` lets tungstenite read it (an empty input reads as `WouldBlock`, which is "need more
//! bytes", never end of stream), and whatever tungstenite writes lands in the output that
//! `take_output` hands over.
//!
//! # Lifecycle
//! - Open: `next` yields messages. Each `Ping` has already been answered: its pong is in the
//!   output.
//! - The client closes: `next` yields `Close`, the close reply is in the output; the
//!   connection sends it and then closes the TCP connection (the server closes first,
//!   RFC 6455 §7.1.1).
//! - The gateway closes: [`ClientFrames::close`] queues the close frame; data the client sent
//!   meanwhile is still yielded (pings are no longer answered); the client's reply is yielded
//!   as `Close`, after which the TCP connection may be closed. Waiting for that reply is
//!   bounded by the caller's timer.
//! - The client breaks the protocol: `next` returns a [`ClientError`]; the connection sends
//!   `frame::close_frame(err.close_code(), err.reason())` and closes. Nothing for it is queued
//!   here.
//!
//! After a `Close` or an error, [`ClientFrames::is_closed`] is true, `feed` drops its input
//! and `next` returns `Ok(None)`.
//!
//! The error type and its close codes are in `error`.
//!
//! # Memory
//! An idle `ClientFrames` is the struct itself plus tungstenite's read buffer, allocated up
//! front with [`READ_BUFFER_SIZE`] bytes (tungstenite's default is 128 KiB). Larger frames
//! still decode: tungstenite reserves a frame's declared length (at most `max_frame_size`)
//! once its header is read.

use std::io::{self, Read, Write};

use bytes::Bytes;
use tungstenite::error::Error;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Message, Role, WebSocketConfig, WebSocketContext};

use super::frame::{truncate_utf8, MAX_CLOSE_REASON};

mod error;

use error::map_error;
pub use error::ClientError;

/// Bytes tungstenite's read buffer is allocated with, per connection. Small, because most
/// connections only ever send the odd ping or subscription change; it is a chunk size, not a
/// limit.
pub const READ_BUFFER_SIZE: usize = 256;

/// Input capacity kept once drained: a burst's worth more is released, so an idle connection
/// does not hold on to the largest read it ever saw.
const IDLE_INPUT_CAPACITY: usize = 4 * 1024;

/// A complete message from the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    /// A text message (UTF-8 checked, across fragments too).
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// A ping; the pong answering it is already in the output.
    Ping,
    /// A pong (the answer to our ping, or an unsolicited heartbeat).
    Pong,
    /// The client's close frame (code and reason, if it sent any), or the reply to ours. No
    /// message follows.
    Close(Option<(u16, String)>),
}

/// Decoder of one connection's client frames; see the module docs for its lifecycle.
#[derive(Debug)]
pub struct ClientFrames {
    ctx: WebSocketContext,
    /// Fed bytes tungstenite has not read yet.
    input: Input,
    /// Bytes tungstenite wrote (pongs, close frames), not yet taken.
    output: Vec<u8>,
    /// We sent a close frame and wait for the client's.
    closing: bool,
    /// A close was received or an error reported: nothing more is read.
    done: bool,
}

/// Fed bytes not read yet: `buf[pos..]`. A `Vec` and an offset rather than a `BytesMut`, whose
/// `capacity()` after `advance` no longer tells how much memory it holds.
#[derive(Debug, Default)]
struct Input {
    buf: Vec<u8>,
    pos: usize,
}

impl Input {
    fn push(&mut self, bytes: &[u8]) {
        // Move the unread rest (usually nothing: `next` reads until it runs dry) to the front,
        // so the buffer is reused instead of growing.
        self.buf.drain(..self.pos);
        self.pos = 0;
        self.buf.extend_from_slice(bytes);
    }

    fn unread(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Frees a drained buffer that grew past [`IDLE_INPUT_CAPACITY`].
    fn shrink_if_drained(&mut self) {
        if self.unread().is_empty() && self.buf.capacity() > IDLE_INPUT_CAPACITY {
            *self = Input::default();
        }
    }
}

/// The in-memory "socket" tungstenite reads from and writes to.
struct Pipe<'a> {
    input: &'a mut Input,
    output: &'a mut Vec<u8>,
}

impl Read for Pipe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let unread = self.input.unread();
        if unread.is_empty() {
            // Not end of stream (that would be `Ok(0)`): just nothing fed yet.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(unread.len());
        buf[..n].copy_from_slice(&unread[..n]);
        self.input.pos += n;
        Ok(n)
    }
}

impl Write for Pipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ClientFrames {
    /// A decoder refusing messages over `max_message_size` bytes (after reassembly) and frames
    /// over `max_frame_size` payload bytes (refused from the header alone, before the payload
    /// is buffered).
    pub fn new(max_message_size: usize, max_frame_size: usize) -> Self {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_SIZE)
            // Replies go straight to the output; nothing waits in tungstenite's write buffer.
            .write_buffer_size(0)
            .max_write_buffer_size(usize::MAX)
            .max_message_size(Some(max_message_size))
            .max_frame_size(Some(max_frame_size));
        ClientFrames {
            ctx: WebSocketContext::new(Role::Server, Some(config)),
            input: Input::default(),
            output: Vec::new(),
            closing: false,
            done: false,
        }
    }

    /// Appends bytes read from the socket; dropped once [`is_closed`](Self::is_closed).
    pub fn feed(&mut self, input: &[u8]) {
        if !self.done {
            self.input.push(input);
        }
    }

    /// The next complete message, `Ok(None)` when more input is needed (or after the close).
    // Not `Iterator::next`: `None` means "feed more", not "finished", and errors are final.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<ClientMessage>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let mut pipe = Pipe {
            input: &mut self.input,
            output: &mut self.output,
        };
        let read = self.ctx.read(&mut pipe);
        let result = match read {
            Ok(Message::Text(text)) => Ok(Some(ClientMessage::Text(text.as_str().to_owned()))),
            Ok(Message::Binary(data)) => Ok(Some(ClientMessage::Binary(data))),
            Ok(Message::Ping(_)) => {
                // tungstenite queues the pong and writes it on its next read or flush; flush
                // now so the pong is in the output when the caller sees the ping.
                self.ctx
                    .flush(&mut pipe)
                    .map(|()| Some(ClientMessage::Ping))
                    .map_err(map_error)
            }
            Ok(Message::Pong(_)) => Ok(Some(ClientMessage::Pong)),
            Ok(Message::Close(frame)) => {
                self.done = true;
                close_received(&mut self.ctx, self.closing, frame, &mut pipe)
            }
            // `read` only yields whole messages; a raw frame cannot come back from it.
            Ok(Message::Frame(_)) => Err(ClientError::Internal("raw frame from read".into())),
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(Error::ConnectionClosed | Error::AlreadyClosed) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => Err(map_error(e)),
        };
        if result.is_err() {
            self.done = true;
        }
        if self.done {
            // Nothing more is read.
            self.input = Input::default();
        } else {
            self.input.shrink_if_drained();
        }
        result
    }

    /// Starts the closing handshake from the server side: the close frame (reason cut to fit
    /// on a character boundary) goes to the output. No-op once closing or closed. The caller
    /// picks a code a server may send (1000-1003, 1007-1011, 3000-4999).
    pub fn close(&mut self, code: u16, reason: &str) {
        if self.done || self.closing {
            return;
        }
        self.closing = true;
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: truncate_utf8(reason, MAX_CLOSE_REASON).into(),
        };
        let mut pipe = Pipe {
            input: &mut self.input,
            output: &mut self.output,
        };
        // Writing to the in-memory output cannot fail; should tungstenite refuse anyway, the
        // connection is over.
        if self.ctx.close(&mut pipe, Some(frame)).is_err() {
            self.done = true;
        }
    }

    /// Bytes to send to the client (pongs, close frames), if any, in order.
    pub fn take_output(&mut self) -> Option<Bytes> {
        if self.output.is_empty() {
            None
        } else {
            Some(Bytes::from(std::mem::take(&mut self.output)))
        }
    }

    /// True after a close frame was received or an error reported: read nothing more.
    pub fn is_closed(&self) -> bool {
        self.done
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closing(&self) -> bool {
        self.closing
    }
}

/// The close frame was read: ours acknowledged, or the client's (answered here).
fn close_received(
    ctx: &mut WebSocketContext,
    closing: bool,
    frame: Option<CloseFrame>,
    pipe: &mut Pipe<'_>,
) -> Result<Option<ClientMessage>, ClientError> {
    let frame = frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
    if closing {
        return Ok(Some(ClientMessage::Close(frame)));
    }
    // tungstenite answers a close code a peer may not send (1005, 1006, 1015, under 1000,
    // unassigned 1xxx, 5000 and up) with 1002 "Protocol violation" and reports that instead
    // of the code received. Report it as the error it is; the connection sends the same
    // close frame either way. (A client that itself sent exactly 1002 "Protocol violation"
    // is reported the same way, which is harmless.)
    if let Some((1002, reason)) = &frame {
        if reason == "Protocol violation" {
            return Err(ClientError::Protocol("invalid close code"));
        }
    }
    // Writes the queued reply; in the server role tungstenite then reports the connection
    // finished, which is what `done` already says.
    match ctx.flush(pipe) {
        Ok(()) | Err(Error::ConnectionClosed) => Ok(Some(ClientMessage::Close(frame))),
        Err(e) => Err(map_error(e)),
    }
}

#[cfg(test)]
mod tests;
