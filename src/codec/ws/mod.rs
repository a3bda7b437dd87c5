//! Sans-IO WebSocket (RFC 6455): the opening handshake, server-to-client frames, the JSON
//! envelope every event is sent in, and decoding what clients send.
//!
//! Server frames are never masked, so one encoding of an event serves every client: the
//! delivery layer frames once and shares the `Bytes`. Client frames are always masked and
//! decoded per connection by [`ClientFrames`], which drives tungstenite's protocol state
//! machine over in-memory buffers (no socket here).
//!
//! Submodules: `handshake` (upgrade checks, accept key, 101/400/426 answers), `frame` (frame
//! headers, text/close/ping/pong frames), `envelope` (the per-event JSON object, whole or split
//! for per-subscriber ids), `client` (client frames in, control replies out).

pub mod client;
pub mod envelope;
pub mod frame;
pub mod handshake;

pub use client::{ClientError, ClientFrames, ClientMessage};
pub use envelope::{envelope_head, envelope_tail, event_envelope, event_frame};
pub use frame::{close_frame, encode_header, ping_frame, pong_frame, text_frame, OpCode};
pub use handshake::{
    accept_key, check_upgrade, write_refusal, write_switching_protocols, HandshakeError, Upgrade,
};

#[cfg(test)]
mod testkit;
