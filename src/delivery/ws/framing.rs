//! How a WebSocket stream frames what is not a shared event frame: a subscriber's own
//! envelope head (a cursor over several partitions), `reset` and `dropped` messages, and the
//! close frames that end a stream (each with the code and reason the README documents).
use bytes::{Bytes, BytesMut};

use crate::broker::FramedEvent;
use crate::codec::ws::envelope::envelope_head;
use crate::codec::ws::frame::{close_frame, text_frame};
use crate::delivery::catchup::gaps_json;
use crate::delivery::queue::Wire;
use crate::delivery::subscriber::{CutOffReason, Gap, StreamFraming};

/// Close code: the endpoint is going away (the gateway drains).
pub const GOING_AWAY: u16 = 1001;
/// Close code: a policy was violated (too slow, token expired, over the egress limit, no pong).
pub const POLICY_VIOLATION: u16 = 1008;

/// WebSocket framing, JSON envelopes or raw data (stateless; one of each for every subscriber).
pub struct WsFraming {
    raw: bool,
}

/// `{"topic","id","type","data"}` per event.
pub static WS_JSON: WsFraming = WsFraming { raw: false };
/// Just the data per event.
pub static WS_RAW: WsFraming = WsFraming { raw: true };

impl WsFraming {
    /// The close code and reason of a stream the gateway ends.
    pub fn close_for(why: CutOffReason) -> (u16, &'static str) {
        match why {
            CutOffReason::TooSlow => (
                POLICY_VIOLATION,
                "slow consumer: too far behind; reconnect with your last id to resume",
            ),
            CutOffReason::TokenExpired => (
                POLICY_VIOLATION,
                "token expired; reconnect with a fresh token and your last id",
            ),
            CutOffReason::EgressLimit => (
                POLICY_VIOLATION,
                "over this connection's egress rate limit; reconnect with your last id",
            ),
            CutOffReason::Protocol(code, reason) => (code, reason),
        }
    }
}

impl StreamFraming for WsFraming {
    fn wire(&self) -> Wire {
        if self.raw {
            Wire::WsRaw
        } else {
            Wire::WsJson
        }
    }

    fn id_line(&self, out: &mut BytesMut, cursor: &str, event: &FramedEvent) {
        envelope_head(out, &event.key.topic, cursor, event.ws_json_tail_len());
    }

    fn opening(&self, _retry_ms: u32) -> Option<Bytes> {
        None
    }

    /// The session pings instead (`ws.ping_interval_ms`), and checks the pongs.
    fn heartbeat(&self) -> Option<Bytes> {
        None
    }

    fn reset(&self, reason: &str, gaps: &[Gap], cursor: &str) -> Bytes {
        // `reason` is one of our own fixed sentences, ids are `[0-9a-z.-]` and topic names
        // `[A-Za-z0-9._-]`: no JSON escaping needed.
        let json = format!(
            "{{\"type\":\"reset\",\"id\":\"{cursor}\",\"reason\":\"{reason}\",\"partitions\":{}}}",
            gaps_json(gaps)
        );
        text_frame(json.as_bytes())
    }

    fn cut_off_notice(&self, why: CutOffReason) -> Bytes {
        let (code, reason) = Self::close_for(why);
        close_frame(code, reason)
    }

    fn dropped_notice(&self, count: u64, resume_from: &str) -> Bytes {
        text_frame(
            format!(
                "{{\"type\":\"dropped\",\"dropped\":{count},\"resume_from\":\"{resume_from}\"}}"
            )
            .as_bytes(),
        )
    }

    fn drain_notice(&self, _retry_ms: u32) -> Bytes {
        close_frame(GOING_AWAY, "gateway shutting down; reconnect to resume")
    }
}
