//! Property tests for the WebSocket codec: client frames (any messages, fragmented at any
//! byte, any masks, pings in between) decode to the same messages however the stream is cut,
//! with a pong per ping; and server frames and event envelopes decode back with tungstenite in
//! the client role, an implementation independent of the encoder.

mod common;

use std::io::{self, Cursor, Read, Write};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sluicegate::codec::ws::frame::{encode_header, frame, OpCode};
use sluicegate::codec::ws::{
    close_frame, envelope_head, envelope_tail, event_frame, ClientFrames, ClientMessage,
};
use tungstenite::protocol::{Message, Role, WebSocketConfig, WebSocketContext};

/// A masked client frame; `first` is FIN + opcode.
fn client_frame(first: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    common::ws::client_frame(first, payload, Some(key))
}

/// One client message: its kind, bytes, and how it is sent (fragment cut points, a mask per
/// frame, and a ping after some fragments).
#[derive(Clone, Debug)]
struct Sent {
    text: bool,
    payload: Vec<u8>,
    cuts: Vec<prop::sample::Index>,
    masks: Vec<[u8; 4]>,
    pings: Vec<Option<Vec<u8>>>,
}

fn sent() -> impl Strategy<Value = Sent> {
    let payload = prop_oneof![
        // Arbitrary Unicode text, sent as text; fragments cut at any byte, mid-character too.
        4 => ".{0,200}".prop_map(|s| (true, s.into_bytes())),
        4 => prop::collection::vec(any::<u8>(), 0..400).prop_map(|b| (false, b)),
        // Past the 16-bit length form now and then.
        1 => (65_530usize..65_600).prop_map(|n| (false, vec![0xA5; n])),
    ];
    (
        payload,
        prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        prop::collection::vec(any::<[u8; 4]>(), 5),
        prop::collection::vec(
            prop::option::weighted(0.3, prop::collection::vec(any::<u8>(), 0..=125)),
            5,
        ),
    )
        .prop_map(|((text, payload), cuts, masks, pings)| Sent {
            text,
            payload,
            cuts,
            masks,
            pings,
        })
}

/// The wire bytes of `msgs`, the messages the decoder must yield, and the pong payloads.
fn encode(msgs: &[Sent]) -> (Vec<u8>, Vec<ClientMessage>, Vec<Vec<u8>>) {
    let (mut wire, mut want, mut pongs) = (Vec::new(), Vec::new(), Vec::new());
    for m in msgs {
        let mut cuts: Vec<usize> = m
            .cuts
            .iter()
            .map(|i| i.index(m.payload.len() + 1))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        cuts.retain(|&c| c != 0 && c != m.payload.len());
        let mut bounds = vec![0];
        bounds.extend(cuts);
        bounds.push(m.payload.len());
        let pieces = bounds.len() - 1;
        for (i, w) in bounds.windows(2).enumerate() {
            let opcode = match (i, m.text) {
                (0, true) => 0x1,
                (0, false) => 0x2,
                _ => 0x0,
            };
            let fin = if i + 1 == pieces { 0x80 } else { 0 };
            wire.extend(client_frame(
                fin | opcode,
                &m.payload[w[0]..w[1]],
                m.masks[i],
            ));
            if fin != 0 {
                want.push(if m.text {
                    ClientMessage::Text(String::from_utf8(m.payload.clone()).unwrap())
                } else {
                    ClientMessage::Binary(Bytes::from(m.payload.clone()))
                });
            }
            // A ping between fragments is answered before the message completes.
            if let Some(ping) = &m.pings[i] {
                wire.extend(client_frame(0x89, ping, m.masks[4]));
                want.push(ClientMessage::Ping);
                pongs.push(ping.clone());
            }
        }
    }
    (wire, want, pongs)
}

/// Unmasked server frames: (opcode, payload) each; panics on anything else.
fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        assert_eq!(bytes[0] & 0xF0, 0x80, "FIN set, RSV clear");
        assert_eq!(bytes[1] & 0x80, 0, "unmasked");
        let (len, hdr) = match bytes[1] {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        out.push((bytes[0] & 0x0F, bytes[hdr..hdr + len].to_vec()));
        bytes = &bytes[hdr + len..];
    }
    out
}

/// tungstenite in the client role reading `wire` (server frames) to its end.
fn tungstenite_reads(wire: &[u8]) -> Vec<Message> {
    struct Stream(Cursor<Vec<u8>>);
    impl Read for Stream {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl Write for Stream {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let mut ctx = WebSocketContext::new(Role::Client, Some(config));
    let mut stream = Stream(Cursor::new(wire.to_vec()));
    let mut out = Vec::new();
    loop {
        match ctx.read(&mut stream) {
            Ok(m) => out.push(m),
            // Every frame read: the stream ends (without a closing handshake, or after one).
            Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ))
            | Err(tungstenite::Error::ConnectionClosed) => return out,
            Err(e) => panic!("tungstenite refused our frames: {e}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn client_messages_survive_any_fragmentation_masking_and_chunking(
        msgs in prop::collection::vec(sent(), 1..6),
        chunk_cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let (wire, want, pongs) = encode(&msgs);
        let mut cuts: Vec<usize> = chunk_cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.push(0);
        cuts.push(wire.len());
        cuts.sort_unstable();
        let mut dec = ClientFrames::new(1 << 20, 1 << 20);
        let mut got = Vec::new();
        let mut out = Vec::new();
        for w in cuts.windows(2) {
            dec.feed(&wire[w[0]..w[1]]);
            while let Some(m) = dec.next().expect("valid client frames") {
                got.push(m);
            }
            if let Some(bytes) = dec.take_output() {
                out.extend_from_slice(&bytes);
            }
        }
        prop_assert_eq!(got, want);
        let replies = server_frames(&out);
        prop_assert!(replies.iter().all(|(op, _)| *op == 0xA), "only pongs");
        let got_pongs: Vec<Vec<u8>> = replies.into_iter().map(|(_, p)| p).collect();
        prop_assert_eq!(got_pongs, pongs);
        prop_assert!(!dec.is_closed());
    }

    #[test]
    fn server_frames_decode_back_at_every_length_form(
        lens in prop::collection::vec(
            prop_oneof![0usize..=3, 124usize..=127, 65_534usize..=65_537, 0usize..2000],
            1..6,
        ),
        seed in any::<u8>(),
    ) {
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for (i, len) in lens.iter().enumerate() {
            let payload: Vec<u8> = (0..*len).map(|j| (j as u8) ^ seed).collect();
            if i % 2 == 0 {
                wire.extend_from_slice(&frame(OpCode::Binary, &payload));
                want.push(Message::Binary(Bytes::from(payload)));
            } else {
                // Header written separately, as the fan-out does before a shared payload.
                let text = "é".repeat(len / 2);
                let mut head = BytesMut::new();
                encode_header(&mut head, OpCode::Text, text.len());
                wire.extend_from_slice(&head);
                wire.extend_from_slice(text.as_bytes());
                want.push(Message::Text(text.into()));
            }
        }
        wire.extend_from_slice(&frame(OpCode::Ping, b"hb"));
        want.push(Message::Ping(Bytes::from_static(b"hb")));
        wire.extend_from_slice(&close_frame(1001, "shutting down"));
        let got = tungstenite_reads(&wire);
        prop_assert_eq!(got.len(), want.len() + 1);
        prop_assert_eq!(&got[..want.len()], &want[..]);
        match &got[want.len()] {
            Message::Close(Some(c)) => {
                prop_assert_eq!(u16::from(c.code), 1001);
                prop_assert_eq!(c.reason.as_str(), "shutting down");
            }
            other => prop_assert!(false, "expected close, got {:?}", other),
        }
    }

    #[test]
    fn envelopes_are_json_text_frames_whole_or_split(
        topic in "[a-z0-9._/-]{1,24}",
        id in ".{0,40}",
        cursor_id in ".{0,200}",
        event_type in prop::option::of(".{0,16}"),
        data in ".{0,300}",
    ) {
        let whole = event_frame(&topic, &id, event_type.as_deref(), data.as_bytes());
        let tail = envelope_tail(event_type.as_deref(), data.as_bytes());
        let mut split = BytesMut::new();
        envelope_head(&mut split, &topic, &cursor_id, tail.len());
        split.extend_from_slice(&tail);
        for (wire, want_id) in [(&whole[..], &id), (&split[..], &cursor_id)] {
            let msgs = tungstenite_reads(wire);
            prop_assert_eq!(msgs.len(), 1);
            let Message::Text(text) = &msgs[0] else {
                return Err(TestCaseError::fail("not a text frame"));
            };
            let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            prop_assert_eq!(v["topic"].as_str(), Some(topic.as_str()));
            prop_assert_eq!(v["id"].as_str(), Some(want_id.as_str()));
            prop_assert_eq!(v["type"].as_str(), event_type.as_deref());
            prop_assert_eq!(v["data"].as_str(), Some(data.as_str()));
        }
    }
}
