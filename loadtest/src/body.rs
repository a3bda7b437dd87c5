//! What follows a subscriber's response head, by transport: an SSE body (chunked or not, parsed
//! with the library's WHATWG parser) or WebSocket frames (JSON envelopes or raw data; pings
//! answered with masked pongs). Either way each event's data comes out as text, from which
//! the caller reads the sequence number and scheduled time.

use std::borrow::Cow;

use serde::Deserialize;
use sluicegate::codec::sse_parse::{ParsedEvent, SseParser};

use crate::httpmini::ChunkDecoder;
use crate::wsframe::{masked_frame, FrameReader, Message, CLOSE, PONG};

/// How the subscriber reads its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// Server-sent events.
    Sse,
    /// WebSocket; Sluicegate sends JSON envelopes, Nchan and Pushpin the data alone.
    Ws,
    /// WebSocket, the data alone in each text frame (Sluicegate's `?mode=raw`).
    WsRaw,
}

/// A Sluicegate envelope, `{"topic","id","type","data"}`; only `data` is needed. Notices
/// (`reset`, `dropped`) have no `data`.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
}

/// The body decoder of one subscriber.
pub enum Body {
    Sse {
        chunked: Option<ChunkDecoder>,
        parser: SseParser,
    },
    Ws {
        frames: FrameReader,
        /// Text frames are JSON envelopes (else the data itself).
        envelope: bool,
        /// Varies the pong masks.
        masks: u32,
    },
}

/// What feeding a body produced besides events.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fed {
    /// The server ended the stream (a WebSocket close frame; its code).
    pub closed: Option<Option<u16>>,
}

impl Body {
    pub fn sse(chunked: bool) -> Self {
        Body::Sse {
            chunked: chunked.then(ChunkDecoder::default),
            parser: SseParser::new(),
        }
    }

    pub fn ws(envelope: bool) -> Self {
        Body::Ws {
            frames: FrameReader::default(),
            envelope,
            masks: 0x5A17_C3E1,
        }
    }

    /// Decodes `input`; calls `on_data` with every event's data; appends what must be sent back
    /// (pongs, the closing answer) to `reply`.
    pub fn feed(
        &mut self,
        input: &[u8],
        scratch: &mut Vec<u8>,
        events: &mut Vec<ParsedEvent>,
        reply: &mut Vec<u8>,
        mut on_data: impl FnMut(&str),
    ) -> Result<Fed, String> {
        match self {
            Body::Sse { chunked, parser } => {
                let data: &[u8] = match chunked.as_mut() {
                    Some(dec) => {
                        scratch.clear();
                        dec.decode(input, scratch)?;
                        scratch
                    }
                    None => input,
                };
                events.clear();
                parser.feed_into(data, events);
                for ev in events.iter() {
                    on_data(&ev.data);
                }
                Ok(Fed::default())
            }
            Body::Ws {
                frames,
                envelope,
                masks,
            } => {
                frames.feed(input);
                while let Some(m) = frames.next_message()? {
                    match m {
                        Message::Text(t) if *envelope => {
                            let env: Envelope =
                                serde_json::from_slice(t).map_err(|e| format!("envelope: {e}"))?;
                            if let Some(d) = env.data {
                                on_data(&d);
                            }
                        }
                        Message::Text(t) => {
                            on_data(std::str::from_utf8(t).map_err(|_| "text is not UTF-8")?)
                        }
                        Message::Ping(p) => {
                            *masks = masks.rotate_left(5) ^ 0x9E37_79B9;
                            masked_frame(PONG, p, masks.to_be_bytes(), reply);
                        }
                        Message::Binary | Message::Pong => {}
                        Message::Close(code) => {
                            let echo = code.map(u16::to_be_bytes);
                            masked_frame(
                                CLOSE,
                                echo.as_ref().map_or(&[], |c| &c[..]),
                                [0; 4],
                                reply,
                            );
                            return Ok(Fed { closed: Some(code) });
                        }
                    }
                }
                Ok(Fed::default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluicegate::codec::ws::{close_frame, event_frame, ping_frame, text_frame};

    fn collect(body: &mut Body, input: &[u8], reply: &mut Vec<u8>) -> (Vec<String>, Fed) {
        let mut out = Vec::new();
        let fed = body
            .feed(input, &mut Vec::new(), &mut Vec::new(), reply, |d| {
                out.push(d.to_string())
            })
            .expect("valid");
        (out, fed)
    }

    #[test]
    fn envelopes_and_raw_give_the_data() {
        let mut wire = event_frame("t", "id-1", None, b"7 123 xx").to_vec();
        wire.extend_from_slice(&text_frame(b"{\"type\":\"dropped\",\"dropped\":3}"));
        let (data, _) = collect(&mut Body::ws(true), &wire, &mut Vec::new());
        assert_eq!(data, ["7 123 xx"]);
        let (data, _) = collect(&mut Body::ws(false), &text_frame(b"8 9 x"), &mut Vec::new());
        assert_eq!(data, ["8 9 x"]);
    }

    #[test]
    fn pings_get_masked_pongs_and_close_ends() {
        let mut reply = Vec::new();
        let mut wire = ping_frame(b"ab").to_vec();
        wire.extend_from_slice(&close_frame(1008, "no"));
        let (_, fed) = collect(&mut Body::ws(true), &wire, &mut reply);
        assert_eq!(fed.closed, Some(Some(1008)));
        assert_eq!(reply[0], 0x8A);
        assert_eq!(reply[1], 0x82, "masked, 2 bytes");
        let mask = &reply[2..6];
        assert_eq!([reply[6] ^ mask[0], reply[7] ^ mask[1]], *b"ab");
        assert_eq!(&reply[8..10], &[0x88, 0x82]);
    }

    #[test]
    fn sse_body_gives_the_data() {
        let (data, _) = collect(&mut Body::sse(false), b"data: 1 2 x\n\n", &mut Vec::new());
        assert_eq!(data, ["1 2 x"]);
    }
}
