//! An event's WebSocket encodings, made from its SSE frame the first time a WebSocket
//! subscriber on this shard needs them, then shared by every WebSocket subscriber here (server
//! frames are unmasked: one encoding serves every client). Nothing is spent on them while no
//! WebSocket client reads the topic.
use std::cell::OnceCell;

use bytes::{Bytes, BytesMut};

use super::FramedEvent;
use crate::codec::ws::envelope::{envelope_head, envelope_tail};
use crate::codec::ws::frame::text_frame;

/// The WebSocket frames of one event, once made.
#[derive(Clone, Debug, Default)]
pub struct WireCache {
    ws: OnceCell<Box<WsFrames>>,
}

#[derive(Clone, Debug)]
struct WsFrames {
    /// One text frame: `{"topic":..,"id":..,"type":..,"data":..}` with the event's own id.
    json: Bytes,
    /// Where the shared tail (`,"type":..,"data":..}`) starts in `json`: a subscriber with its
    /// own id sends its own head and this.
    tail_at: usize,
    /// One text frame holding just the data (raw mode), made on first use.
    raw: OnceCell<Bytes>,
}

impl FramedEvent {
    /// The event's id (the SSE `id:` line's value; empty without one).
    pub fn id_str(&self) -> &str {
        let line = self.frame.get(..self.id_len).unwrap_or(&[]);
        let id = line
            .strip_prefix(b"id: ")
            .and_then(|l| l.strip_suffix(b"\n"))
            .unwrap_or(&[]);
        std::str::from_utf8(id).unwrap_or("")
    }

    /// The event's data as an SSE client sees it: the frame's `data:` lines joined with LF.
    pub fn data_text(&self) -> Vec<u8> {
        let mut data = Vec::with_capacity(self.frame.len());
        let mut first = true;
        for line in self.body().split(|&b| b == b'\n') {
            let Some(rest) = line.strip_prefix(b"data:") else {
                continue;
            };
            if !first {
                data.push(b'\n');
            }
            first = false;
            data.extend_from_slice(rest.strip_prefix(b" ").unwrap_or(rest));
        }
        data
    }

    fn ws(&self) -> &WsFrames {
        self.wire.ws.get_or_init(|| {
            let data = self.data_text();
            let tail = envelope_tail(self.meta.event_type.as_deref(), &data);
            let mut out = BytesMut::with_capacity(tail.len() + 64);
            envelope_head(&mut out, &self.key.topic, self.id_str(), tail.len());
            let tail_at = out.len();
            out.extend_from_slice(&tail);
            Box::new(WsFrames {
                json: out.freeze(),
                tail_at,
                raw: OnceCell::new(),
            })
        })
    }

    /// The JSON envelope text frame, with the event's own id.
    pub fn ws_json(&self) -> &[u8] {
        &self.ws().json
    }

    /// The shared tail of the JSON envelope (after the id), for a subscriber's own head.
    pub fn ws_json_tail(&self) -> &[u8] {
        let ws = self.ws();
        ws.json.get(ws.tail_at..).unwrap_or(&[])
    }

    /// Length of [`FramedEvent::ws_json_tail`].
    pub fn ws_json_tail_len(&self) -> usize {
        self.ws_json_tail().len()
    }

    /// A text frame with just the data (raw mode).
    pub fn ws_raw(&self) -> &[u8] {
        self.ws().raw.get_or_init(|| text_frame(&self.data_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::framing::Framer;
    use crate::broker::{EventMeta, PartitionKey};

    fn framed(data: &[u8], event_type: Option<&str>) -> FramedEvent {
        let mut framer = Framer::new(7);
        let key = PartitionKey {
            topic: "orders".into(),
            partition: 0,
        };
        let meta = EventMeta {
            event_type: event_type.map(Into::into),
            ..EventMeta::default()
        };
        framer.frame_data(&key, 41, data, meta).expect("frames")
    }

    #[test]
    fn data_is_rebuilt_as_sse_clients_see_it() {
        let e = framed(b"one\r\ntwo\rthree\n", Some("created"));
        assert_eq!(e.data_text(), b"one\ntwo\nthree\n");
        assert_eq!(framed(b"", None).data_text(), b"");
        assert!(e.id_str().starts_with("7"), "{}", e.id_str());
    }

    #[test]
    fn the_json_frame_is_a_head_plus_the_shared_tail() {
        let e = framed(b"say \"hi\"\n\xc3\xa9", Some("greeting"));
        let json = e.ws_json().to_vec();
        let tail = e.ws_json_tail().to_vec();
        assert!(json.ends_with(&tail));
        // Skip the 2-byte frame header (payload under 126 bytes).
        let value: serde_json::Value = serde_json::from_slice(&json[2..]).expect("json");
        assert_eq!(value["topic"], "orders");
        assert_eq!(value["type"], "greeting");
        assert_eq!(value["data"], "say \"hi\"\né");
        assert_eq!(value["id"], e.id_str());
        assert_eq!(&e.ws_raw()[2..], "say \"hi\"\né".as_bytes());
    }
}
