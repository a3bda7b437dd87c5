//! What the benches and the broker-plane tests reach into, exposed deliberately and nothing
//! more: not a stable API. The paths mirror the crate's own modules.
#![doc(hidden)]

/// Events, their framing and history; the Kafka plane.
pub mod broker {
    pub use crate::broker::framing::Framer;
    pub use crate::broker::memory::History;
    pub use crate::broker::{EventMeta, FramedEvent, PartitionKey};

    /// The Kafka broker plane, driven directly by `tests/kafka_plane.rs`.
    pub mod kafka {
        pub use crate::broker::kafka::{
            check_bootstrap, owner_of, BrokerState, EventTypeRule, FetchError, KafkaError,
            KafkaPlane, KafkaRecord, PlaneCommand, PlaneEvent, ProduceError, ProduceRecord,
        };
    }
}

/// The fan-out pieces the `fanout` bench drives without sockets.
pub mod delivery {
    pub use crate::delivery::registry::Registry;
    pub use crate::delivery::sse::SSE;
    pub use crate::delivery::subscriber::{Subscriber, SubscriptionSpec};
    pub use crate::delivery::writer::Writer;
}

/// The ring mesh, for the `mesh` bench.
pub mod shard {
    pub use crate::shard::mesh::{build_mesh, MeshMsg};
}
