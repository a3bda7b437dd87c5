//! Frame an event once, at the partition owner, into a shared SSE buffer.
use bytes::BytesMut;

use super::{FramedEvent, PartitionKey, PublishError, PublishItem};
use crate::codec::event_id;
use crate::codec::sse::{encode_event, encoded_len_hint, SseEvent};

/// Frames events into slices of one growing arena, so small frames share allocations.
pub struct Framer {
    epoch: u64,
    arena: BytesMut,
}

/// Arena chunk size: large enough that most frames are carved from an existing allocation.
const ARENA_CHUNK: usize = 64 * 1024;

impl Framer {
    pub fn new(epoch: u64) -> Self {
        Self {
            epoch,
            arena: BytesMut::new(),
        }
    }

    /// The broker incarnation ids are stamped with.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Frame `item` as the event at `offset` of `key`.
    pub fn frame(
        &mut self,
        key: &PartitionKey,
        offset: u64,
        item: &PublishItem,
    ) -> Result<FramedEvent, PublishError> {
        let id = event_id::format_single(self.epoch, offset + 1);
        let event = SseEvent {
            id: Some(&id),
            event: item.event_type.as_deref(),
            data: &item.data,
            retry_ms: None,
        };
        let need = encoded_len_hint(&event);
        if self.arena.capacity() - self.arena.len() < need {
            self.arena.reserve(need.max(ARENA_CHUNK));
        }
        let id_len = encode_event(&mut self.arena, &event)
            .map_err(|e| PublishError::Invalid(e.to_string()))?;
        Ok(FramedEvent {
            key: key.clone(),
            offset,
            frame: self.arena.split().freeze(),
            id_len,
        })
    }
}
