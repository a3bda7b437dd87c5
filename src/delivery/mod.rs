//! Client-facing sessions: the listener, the HTTP request loop, publish, SSE subscribers.
pub mod backfill;
pub mod catchup;
pub mod connection;
pub mod cors;
pub mod filter;
pub mod listener;
pub mod policy_gate;
pub mod publish;
pub mod queue;
pub mod registry;
pub mod response;
pub mod routes;
pub mod sendmsg;
pub mod sse;
pub mod subscribe;
pub mod subscriber;
pub mod writer;
