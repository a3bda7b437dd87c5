//! Client-facing sessions: the listener, the HTTP request loop, publish, SSE subscribers.
pub mod backfill;
pub mod connection;
pub mod filter;
pub mod listener;
pub mod publish;
pub mod response;
pub mod routes;
pub mod sendmsg;
pub mod sse_session;
pub mod subscribe;
pub mod subscriber;
