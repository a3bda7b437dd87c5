//! Sluicegate: a thread-per-core event gateway (HTTP and Kafka in; SSE, WebSocket, webhooks and
//! Redis Streams out).
//!
//! # Layout
//! - [`config`]: TOML file + environment + CLI flags, validated once at start.
//! - [`codec`]: sans-IO wire formats (HTTP/1.1 requests, SSE frames, event ids, topic names).
//!   Nothing in here touches a socket or a runtime, which is what makes it cheap to fuzz,
//!   property-test and bench.
//! - [`shard`]: the executor pool (one glommio executor per core), the N×N ring mesh between
//!   shards, shutdown.
//! - [`broker`]: where events come from and are kept for resume (the embedded broker, Kafka),
//!   and the pure routing of partitions to shards.
//! - [`delivery`]: per-connection sessions: the HTTP request loop, publish, and the pieces every
//!   streaming transport is made of (queue, catch-up cursor, registry, writer), with SSE's
//!   session and framing under `delivery::sse`.
//! - [`telemetry`]: per-shard counters and the `/metrics` text.
#![deny(unsafe_code)]

pub mod broker;
pub mod codec;
pub mod config;
pub mod delivery;
pub mod shard;
pub mod telemetry;
