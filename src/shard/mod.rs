//! The executor pool: one glommio executor per core, the ring mesh between them, routing and
//! shutdown.
pub mod context;
pub mod kafka_link;
pub mod mesh;
pub mod pool;
pub mod replies;
pub mod routing;
pub mod shutdown;
