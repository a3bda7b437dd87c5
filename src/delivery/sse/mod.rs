//! Server-Sent Events: the session that writes a subscriber's queue to its socket, and how SSE
//! frames what is not a shared event frame (id lines, `reset`, last words).
pub mod framing;
pub mod session;

pub use framing::SSE;
