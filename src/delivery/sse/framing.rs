//! How an SSE stream frames the per-subscriber pieces: a composite id line, the `reset` event,
//! the cut-off and drain notices, the opening and heartbeat comments.
use bytes::{Bytes, BytesMut};

use crate::broker::FramedEvent;
use crate::codec::sse::{encode_comment, encode_event, SseEvent};
use crate::delivery::catchup::gaps_json;
use crate::delivery::queue::Wire;
use crate::delivery::subscriber::{CutOffReason, Gap, StreamFraming};

/// The SSE framing (stateless; one for every SSE subscriber).
pub struct SseFraming;

/// What SSE subscribers are created with.
pub static SSE: SseFraming = SseFraming;

/// The comment a stream with nothing to say for a whole heartbeat interval gets.
pub const HEARTBEAT: &[u8] = b":\n\n";

/// The first bytes of every stream: the reconnect delay and a comment (so a client, and a proxy,
/// see the stream open before the first event).
pub fn opening(retry_ms: u32) -> Bytes {
    Bytes::from(format!("retry: {retry_ms}\n: ok\n\n"))
}

impl StreamFraming for SseFraming {
    fn wire(&self) -> Wire {
        Wire::Sse
    }

    fn heartbeat(&self) -> Option<Bytes> {
        Some(Bytes::from_static(HEARTBEAT))
    }

    fn opening(&self, retry_ms: u32) -> Option<Bytes> {
        Some(opening(retry_ms))
    }

    fn id_line(&self, out: &mut BytesMut, cursor: &str, _event: &FramedEvent) {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(cursor.as_bytes());
        out.extend_from_slice(b"\n");
    }

    fn reset(&self, reason: &str, gaps: &[Gap], cursor: &str) -> Bytes {
        // `reason` is one of our own fixed sentences and topic names are validated to
        // [A-Za-z0-9._-]: no JSON escaping needed.
        let data = format!(
            "{{\"reason\":\"{reason}\",\"partitions\":{}}}",
            gaps_json(gaps)
        );
        let mut out = BytesMut::new();
        let ev = SseEvent {
            id: Some(cursor),
            event: Some("reset"),
            data: data.as_bytes(),
            retry_ms: None,
        };
        // Our own id, type and JSON never contain line breaks, so encoding cannot fail; if it
        // ever did, an empty chunk is harmless.
        let _ = encode_event(&mut out, &ev);
        out.freeze()
    }

    fn cut_off_notice(&self, why: CutOffReason) -> Bytes {
        let text = match why {
            CutOffReason::TooSlow => {
                "disconnected: this client fell too far behind; reconnect with Last-Event-ID to resume"
            }
            CutOffReason::TokenExpired => {
                "disconnected: the token expired; reconnect with a fresh token and Last-Event-ID to resume"
            }
            CutOffReason::EgressLimit => {
                "disconnected: over this connection's egress rate limit; reconnect with Last-Event-ID to resume"
            }
            CutOffReason::Protocol(_, reason) => reason,
        };
        let mut out = BytesMut::new();
        encode_comment(&mut out, text);
        out.freeze()
    }

    fn dropped_notice(&self, count: u64, resume_from: &str) -> Bytes {
        // Ids are `[0-9a-z.-]`: no JSON escaping needed. No `id:` field: the client's
        // Last-Event-ID stays at the last event it got; `resume_from` is there for a client
        // that wants the dropped events back.
        Bytes::from(format!(
            "event: dropped\ndata: {{\"dropped\":{count},\"resume_from\":\"{resume_from}\"}}\n\n"
        ))
    }

    fn drain_notice(&self, retry_ms: u32) -> Bytes {
        Bytes::from(format!(
            "retry: {retry_ms}\n: gateway shutting down; reconnect to resume\n\n"
        ))
    }
}
