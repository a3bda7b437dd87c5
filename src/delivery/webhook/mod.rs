//! Outbound webhooks: the endpoints API (`/webhooks`), the WebSub hub (`/hub`) and the one
//! delivery engine behind both.
//!
//! - [`model`]: a subscription and the records that keep it in the log (`gateway.webhooks*`).
//! - [`table`]: every subscription, rebuilt from those records (pure).
//! - [`engine`]: a shard's engine: follows the state topic, drives the subscriptions it owns,
//!   writes progress, checkpoints, dead letters.
//! - [`driver`]: one running subscription: its lanes, and one event's delivery with retries
//!   on the schedule (`policy::retry_schedule`).
//! - [`lane`]: one partition of it: read, filter, deliver in order (per partition, or per key
//!   with [`ordering`]'s window). [`signal`]: the flags its tasks sleep on.
//! - [`feed`]: one partition read at the subscription's pace (history, durable log, wait).
//! - [`message`]: an event as an HTTP request: body, ids, signatures, WebSub `Link`s.
//! - [`client`]: the outbound HTTP/1.1 client (keep-alive per origin, rustls, SSRF guard).
//! - [`api`], [`hub`]: the HTTP endpoints.
pub mod api;
pub mod client;
pub mod driver;
pub mod engine;
pub mod feed;
pub mod hub;
pub mod lane;
pub mod message;
pub mod model;
pub mod ordering;
pub mod signal;
pub mod table;
