//! Sluicegate: a thread-per-core event gateway (HTTP, WebSocket, webhooks and Kafka in; SSE,
//! WebSocket, webhooks and Redis Streams out).
//!
//! # Layout
//! - [`config`]: TOML file + environment + CLI flags, validated once at start.
//! - [`codec`]: sans-IO wire formats (HTTP/1.1 requests and responses, SSE frames, WebSocket
//!   frames and handshake, event ids, topic names, query strings, WebSub hub-request form
//!   bodies, sync hook answers).
//!   Nothing in here touches a socket or a runtime, which is what makes it cheap to fuzz,
//!   property-test and bench.
//! - [`shard`]: the executor pool (one glommio executor per core), the N×N ring mesh between
//!   shards, shutdown, and each shard's end of the external log (`broker_link`) and of the Redis
//!   sink (`redis_sink`).
//! - [`broker`]: where events come from and are kept for resume (the embedded broker and its
//!   durable log on disk; Kafka and Redis Streams behind one plane protocol, `broker::plane`;
//!   the Redis sink's plane), and the pure routing of partitions to shards.
//! - [`delivery`]: per-connection sessions: the HTTP request loop, publish, and the pieces every
//!   streaming transport is made of (queue, catch-up cursor, registry, writer), with SSE's
//!   session and framing under `delivery::sse`, WebSocket's under `delivery::ws`; outbound
//!   webhooks (endpoints API, WebSub hub, the delivery engine and its HTTP client) under
//!   `delivery::webhook`; sync hooks (plugins) under `delivery::hooks`.
//! - [`policy`]: who a request is (API keys, JWT), what it may touch (topic ACLs), how fast it may
//!   go (token buckets, split across shards) and whether it gets in (per-address admission).
//!   Pure decisions; the delivery layer asks, every transport the same way.
//! - [`telemetry`]: per-shard counters, stage latencies and the `/metrics` text; system events
//!   (`gateway.*`) and the webhook status board.
//! - [`service`]: running under systemd (the unit it prints, readiness notifications).
//!
//! Public on purpose: [`codec`] (the load tool and the fuzz targets use the wire formats),
//! [`config`], [`Gateway`] (what `main` runs) and [`internals`] (what the benches and the broker
//! plane tests reach into). Everything else is `pub(crate)`, so the compiler reports what is no
//! longer used.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub(crate) mod broker;
pub mod codec;
pub mod config;
pub(crate) mod delivery;
pub mod internals;
pub(crate) mod policy;
pub mod service;
pub(crate) mod shard;
pub(crate) mod telemetry;

pub use shard::pool::{Gateway, PoolError, Readiness, ReloadHandle, ShutdownHandle};

/// Native sync hooks (plugins) for a library user embedding the gateway: implement
/// [`plugins::Hook`] and start with [`Gateway::start_with`]. The configured HTTP hooks
/// (`[[hooks.publish]]`, `[[hooks.subscribe]]`) implement the same trait.
pub mod plugins {
    pub use crate::delivery::hooks::{
        Hook, HookError, HookFuture, HookSettings, Plugins, PublishChange, PublishHookRequest,
        PublishVerdict, SubscribeHookRequest, SubscribeVerdict,
    };
}
