//! Server-Sent Events: how SSE frames what is not a shared event frame (id lines, `reset`,
//! last words, heartbeats). Its session is the shared `delivery::session` with a silent peer.
pub mod framing;

pub use framing::SSE;
