//! What the benches and the broker-plane tests reach into, exposed deliberately and nothing
//! more: not a stable API. The paths mirror the crate's own modules.
#![doc(hidden)]

/// Events, their framing and history; the Kafka plane.
pub mod broker {
    pub use crate::broker::framing::Framer;
    pub use crate::broker::memory::History;
    pub use crate::broker::{EventMeta, FramedEvent, PartitionKey};

    /// The durable log's on-disk format, for the `log_record` bench and the `log_segment` fuzz
    /// target.
    pub mod log {
        pub use crate::broker::log::{
            decode, encode, encoded_len, index_name, list_segments, log_name, parse_name,
            scan_segment, scan_segment_with, Corruption, Decoded, EncodeError, HeaderIter, Headers,
            IndexEntry, IndexError, Record, RecordRef, RecordView, Records, ScanOutcome, ScanStop,
            SegmentFileKind, SegmentFiles, SparseIndex, MAX_RECORD_LEN,
        };
    }

    /// The Kafka broker plane, driven directly by `tests/kafka_plane.rs`.
    pub mod kafka {
        pub use crate::broker::kafka::{check_bootstrap, owner_of, spawn_plane, KafkaError};
        pub use crate::broker::plane::{
            BrokerPlane, BrokerState, EventTypeRule, FetchError, LogRecord, PlaneCommand,
            PlaneEvent, ProduceError, ProduceRecord,
        };
    }

    /// Redis stream entries (both modes), for the `redis_entry` fuzz target.
    pub mod redis {
        pub use crate::broker::redis::entry::{
            decode, encode, offset_of, stream_id_of, EntryError, EntryParts,
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

/// The policy engine's parts, for the `policy` and `fanout` benches and the fuzz targets.
pub mod policy {
    pub use crate::policy::acl::{is_safe_sub, Acl, TopicPattern};
    pub use crate::policy::bucket::TokenBucket;
    pub use crate::policy::credential::{extract, MAX_TOKEN_LEN};
    pub use crate::policy::egress::EgressLimiter;
    pub use crate::policy::jwt::{JwtSettings, KeySet};
    pub use crate::policy::split::{LocalQuotas, QuotaBoard, QuotaKey, QuotaKind};
    pub use crate::policy::ssrf::{AddressPolicy, Cidr, CidrError};
    pub use crate::policy::webhook_signature::{
        verify_hub_signature, verify_standard, StandardHeaders,
    };
}

/// The ring mesh, for the `mesh` bench.
pub mod shard {
    pub use crate::shard::mesh::{build_mesh, MeshMsg};
}
