//! Frame an event once, at the partition owner, into a shared SSE buffer.
use bytes::BytesMut;

use super::{EventMeta, FramedEvent, PartitionKey, PublishError, PublishItem};
use crate::codec::event_id;
use crate::codec::sse::{encode_event, encoded_len_hint, FrameError, SseEvent};

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
        let meta = EventMeta {
            event_type: item.event_type.clone(),
            key: item.key.clone(),
            headers: super::shared_headers(&item.headers),
        };
        self.frame_data(key, offset, &item.data, meta)
            .map_err(|e| PublishError::Invalid(e.to_string()))
    }

    /// Frame `data` (with the type and key in `meta`) as the event at `offset` of `key`.
    pub fn frame_data(
        &mut self,
        key: &PartitionKey,
        offset: u64,
        data: &[u8],
        meta: EventMeta,
    ) -> Result<FramedEvent, FrameError> {
        let id = event_id::format_single(self.epoch, offset + 1);
        let event = SseEvent {
            id: Some(&id),
            event: meta.event_type.as_deref(),
            data,
            retry_ms: None,
        };
        let need = encoded_len_hint(&event);
        if self.arena.capacity() - self.arena.len() < need {
            self.arena.reserve(need.max(ARENA_CHUNK));
        }
        let id_len = encode_event(&mut self.arena, &event)?;
        Ok(FramedEvent {
            key: key.clone(),
            offset,
            frame: self.arena.split().freeze(),
            id_len,
            meta,
            wire: Default::default(),
        })
    }
}
