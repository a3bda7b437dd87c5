//! The executor pool: one glommio executor per core, the ring mesh between them, the shard's
//! end of its Kafka plane, and shutdown. Which shard owns a partition is decided below, in
//! `broker::routing`, so the broker layer can use it without naming this one.
pub mod broker_link;
pub mod commit;
pub mod context;
pub mod event_waiters;
pub mod mesh;
pub mod pool;
pub mod redis_sink;
pub mod replies;
pub mod shutdown;
pub mod storage;
pub mod system_events;
