//! The policy engine: who a request is (credentials), what it may touch (topic ACLs), how fast
//! it may go (token buckets) and whether it gets in at all (admission). Every transport asks
//! the same questions through [`engine::ShardPolicy`].
//! The webhook engine's retry decisions ([`retry_schedule`]) are here for the same reason:
//! pure, with the clock and the randomness passed in.
//!
//! Decisions are pure functions over (config, principal, request, now); the only state is per
//! shard (token cache, buckets) or, for what must hold across shards, touched at connection or
//! rebalance time, never per event.
pub mod acl;
pub mod admission;
pub mod api_keys;
pub mod bucket;
pub mod credential;
pub mod denial;
pub mod egress;
pub mod engine;
pub mod jwt;
pub mod principal;
pub mod receivers;
pub mod reloadable;
pub mod retry_schedule;
pub mod split;
pub mod ssrf;
pub mod token_cache;
pub mod webhook_signature;
