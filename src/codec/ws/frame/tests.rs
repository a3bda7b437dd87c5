//! Unit tests for server frames: header bytes at the length-form boundaries, and control
//! frames decoded back by the test kit's independent decoder.

use super::*;
use crate::codec::ws::testkit::{decode_server_frames, ServerFrame};

fn header(opcode: OpCode, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    encode_header(&mut out, opcode, len);
    assert_eq!(out.len(), header_len(len));
    out
}

#[test]
fn header_uses_the_shortest_length_form() {
    assert_eq!(header(OpCode::Text, 0), [0x81, 0]);
    assert_eq!(header(OpCode::Text, 125), [0x81, 125]);
    assert_eq!(header(OpCode::Binary, 126), [0x82, 126, 0, 126]);
    assert_eq!(header(OpCode::Text, 0xFFFF), [0x81, 126, 0xff, 0xff]);
    assert_eq!(
        header(OpCode::Text, 0x1_0000),
        [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]
    );
    assert_eq!(header(OpCode::Close, 2), [0x88, 2]);
    assert_eq!(header(OpCode::Ping, 0), [0x89, 0]);
    assert_eq!(header(OpCode::Pong, 1), [0x8A, 1]);
    assert_eq!(header(OpCode::Continuation, 1), [0x80, 1]);
}

#[test]
fn header_writes_into_bytes_mut_too() {
    let mut out = BytesMut::new();
    encode_header(&mut out, OpCode::Text, 300);
    assert_eq!(&out[..], [0x81, 126, 1, 44]);
}

#[test]
fn text_frames_decode_back_at_every_length_form() {
    for len in [0, 1, 125, 126, 0xFFFF, 0x1_0000] {
        let payload = "a".repeat(len);
        let frames = decode_server_frames(&text_frame(payload.as_bytes()));
        assert_eq!(
            frames,
            [ServerFrame {
                fin: true,
                opcode: 1,
                payload: payload.into_bytes()
            }]
        );
    }
}

#[test]
fn close_frame_carries_code_and_reason() {
    let frames = decode_server_frames(&close_frame(1008, "policy"));
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].opcode, 8);
    assert_eq!(frames[0].payload, b"\x03\xf0policy");
}

#[test]
fn close_reason_is_cut_on_a_char_boundary() {
    // 'é' is 2 bytes: 61 of them fill 122 bytes, the 62nd would reach 124 > 123.
    let reason = "é".repeat(100);
    let bytes = close_frame(1001, &reason);
    let frames = decode_server_frames(&bytes);
    let payload = &frames[0].payload;
    assert_eq!(payload.len(), 2 + 122);
    assert!(std::str::from_utf8(&payload[2..]).is_ok());
    // A 4-byte char straddling the limit is dropped whole.
    let reason = format!("{}😀", "x".repeat(121));
    let frames = decode_server_frames(&close_frame(1000, &reason));
    assert_eq!(&frames[0].payload[2..], "x".repeat(121).as_bytes());
    // Exactly 123 bytes fit.
    let frames = decode_server_frames(&close_frame(1000, &"y".repeat(123)));
    assert_eq!(frames[0].payload.len(), 125);
}

#[test]
fn ping_and_pong_payloads_are_capped_at_125() {
    let long = [7u8; 200];
    let frames = decode_server_frames(&ping_frame(&long));
    assert_eq!((frames[0].opcode, frames[0].payload.len()), (9, 125));
    let frames = decode_server_frames(&pong_frame(b"hb"));
    assert_eq!((frames[0].opcode, &frames[0].payload[..]), (10, &b"hb"[..]));
}

#[test]
fn truncate_utf8_keeps_short_strings() {
    assert_eq!(truncate_utf8("abc", 3), "abc");
    assert_eq!(truncate_utf8("abc", 2), "ab");
    assert_eq!(truncate_utf8("€", 2), "");
    assert_eq!(truncate_utf8("", 0), "");
}
