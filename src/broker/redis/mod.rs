//! Redis Streams with `fred`: the log of `[redis] topics` in broker mode (several gateway
//! instances on one Redis), or a mirror of what flows through the gateway in sink mode.
//!
//! fred is a tokio crate, so each shard talks to Redis from a plane thread of its own running
//! a tokio current-thread runtime, the pattern the Kafka plane uses (fred's `glommio` feature
//! would swap its runtime for the whole build and is marked experimental; a blocking `XREAD`
//! on a shard's own executor would also need a connection per shard anyway). See the README's
//! "Redis Streams".
//!
//! # Layout
//! - [`entry`]: the fields of a stream entry (both modes), stream id <-> offset.
//! - `reply`: stream replies (`XRANGE`, `XREAD`) as plain entries.
//! - `conn`: connecting with fred, and sorting its errors.
//! - [`broker`]: broker mode's plane (live `XREAD`, `XADD`, catch-up `XRANGE`).
//! - [`sink_plane`]: sink mode's plane (pipelined `XADD` with retries).
pub mod broker;
mod conn;
pub mod entry;
mod reply;
pub mod sink_plane;

pub use broker::spawn_broker_plane;
