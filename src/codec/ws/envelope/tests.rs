//! Unit tests for the event envelope: it is JSON that serde_json reads back to the same
//! strings, whatever the data holds, and head + tail is the same frame as the whole.

use serde_json::Value;

use super::*;
use crate::codec::ws::testkit::decode_server_frames;

fn parse(payload: &[u8]) -> Value {
    serde_json::from_slice(payload).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(payload));
    })
}

/// Data that needs every kind of escape, plus non-ASCII that must pass through.
fn nasty() -> String {
    let mut s = String::from("say \"hi\" \\ back\nslash\r\n\ttab é ü 中文 😀 \u{7f} \u{2028}");
    s.extend((0u8..0x20).map(char::from));
    s.push_str("</script>");
    s
}

#[test]
fn envelope_round_trips_through_serde_json() {
    let data = nasty();
    let mut out = Vec::new();
    event_envelope(
        &mut out,
        "orders.eu",
        "1718-42",
        Some("up\"date"),
        data.as_bytes(),
    );
    let v = parse(&out);
    assert_eq!(v["topic"], "orders.eu");
    assert_eq!(v["id"], "1718-42");
    assert_eq!(v["type"], "up\"date");
    assert_eq!(v["data"], data.as_str());
    assert_eq!(v.as_object().unwrap().len(), 4);
}

#[test]
fn envelope_without_type_has_null() {
    let mut out = Vec::new();
    event_envelope(&mut out, "t", "1", None, b"{\"a\":1}");
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{"topic":"t","id":"1","type":null,"data":"{\"a\":1}"}"#
    );
}

#[test]
fn escapes_use_short_forms_and_lowercase_hex() {
    let mut out = Vec::new();
    event_envelope(&mut out, "t", "1", None, b"\n\r\t\x08\x0c\x00\x1f\"\\/");
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.ends_with(r#""data":"\n\r\t\u0008\u000c\u0000\u001f\"\\/"}"#),
        "{text}"
    );
}

#[test]
fn non_ascii_passes_through_unescaped() {
    let mut out = Vec::new();
    event_envelope(&mut out, "t", "1", None, "é😀".as_bytes());
    assert!(std::str::from_utf8(&out)
        .unwrap()
        .contains("\"data\":\"é😀\""));
}

#[test]
fn invalid_utf8_data_becomes_replacement_chars_not_a_panic() {
    let mut out = Vec::new();
    event_envelope(&mut out, "t", "1", None, b"ok\xff\xfe\xc3");
    let v = parse(&out);
    assert_eq!(v["data"], "ok\u{fffd}\u{fffd}\u{fffd}");
}

#[test]
fn event_frame_is_one_text_frame_holding_the_envelope() {
    for len in [0, 50, 100, 125, 200, 70_000] {
        let data = "d".repeat(len);
        let frame = event_frame("a/b", "7", Some("x"), data.as_bytes());
        let frames = decode_server_frames(&frame);
        assert_eq!(frames.len(), 1);
        assert_eq!((frames[0].fin, frames[0].opcode), (true, 1));
        let mut whole = Vec::new();
        event_envelope(&mut whole, "a/b", "7", Some("x"), data.as_bytes());
        assert_eq!(frames[0].payload, whole);
    }
}

#[test]
fn head_plus_tail_is_the_whole_frame() {
    let data = nasty();
    // Payload lengths around the 125/126 header boundary, and a 16-bit one.
    for pad in [0, 1, 30, 60, 1000] {
        let id = format!("p0:{}|\"q\"\n", "9".repeat(pad));
        let tail = envelope_tail(Some("t\u{1}"), data.as_bytes());
        let mut head = BytesMut::new();
        envelope_head(&mut head, "top\"ic", &id, tail.len());
        let mut wire = head.to_vec();
        wire.extend_from_slice(&tail);
        let whole = event_frame("top\"ic", &id, Some("t\u{1}"), data.as_bytes());
        assert_eq!(wire, whole.to_vec(), "pad {pad}");
        let v = parse(&decode_server_frames(&wire)[0].payload);
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["topic"], "top\"ic");
        assert_eq!(v["data"], data.as_str());
    }
}

#[test]
fn small_payload_head_switches_header_form_at_126() {
    // Choose lengths so the total payload is exactly 125 and 126 bytes.
    let tail = envelope_tail(None, b"");
    let fixed = br#"{"topic":"","id":""#.len() + 1 + tail.len();
    for total in [125usize, 126] {
        let id = "i".repeat(total - fixed);
        let mut head = BytesMut::new();
        envelope_head(&mut head, "", &id, tail.len());
        let mut wire = head.to_vec();
        wire.extend_from_slice(&tail);
        let frames = decode_server_frames(&wire);
        assert_eq!(frames[0].payload.len(), total);
        assert_eq!(wire.len(), total + if total == 125 { 2 } else { 4 });
    }
}

#[test]
fn escaped_len_matches_escape_into() {
    for b in 0u8..=255 {
        let mut out = Vec::new();
        escape_into(&mut out, &[b]);
        assert_eq!(out.len(), escaped_len(&[b]), "byte {b:#x}");
    }
}
