//! Unit tests for client frame decoding: each message kind, control replies, the closing
//! handshake from either side, and one test per close code a bad client earns.

use super::*;
use crate::codec::ws::frame::close_frame;
use crate::codec::ws::testkit::{client_frame, decode_server_frames, raw_frame};

const MASK: Option<[u8; 4]> = Some([1, 2, 3, 4]);

fn frames() -> ClientFrames {
    ClientFrames::new(1024, 512)
}

/// Feeds `input` whole and collects messages until more input is needed or an error.
fn run(c: &mut ClientFrames, input: &[u8]) -> Result<Vec<ClientMessage>, ClientError> {
    c.feed(input);
    let mut out = Vec::new();
    while let Some(m) = c.next()? {
        out.push(m);
    }
    Ok(out)
}

fn error_of(input: &[u8]) -> ClientError {
    let mut c = frames();
    let err = run(&mut c, input).expect_err("refused");
    assert!(c.is_closed());
    assert_eq!(c.take_output(), None, "nothing queued on error");
    err
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

#[test]
fn decodes_text_binary_and_pong() {
    let mut input = client_frame(1, "héllo".as_bytes());
    input.extend(client_frame(2, &[0, 1, 2]));
    input.extend(client_frame(10, b"x"));
    let mut c = frames();
    assert_eq!(
        run(&mut c, &input).unwrap(),
        [
            ClientMessage::Text("héllo".into()),
            ClientMessage::Binary(Bytes::from_static(&[0, 1, 2])),
            ClientMessage::Pong,
        ]
    );
    assert_eq!(c.take_output(), None);
    assert!(!c.is_closed());
}

#[test]
fn reassembles_fragments_with_interleaved_ping() {
    let mut input = raw_frame(0x01, b"ab", MASK);
    input.extend(client_frame(9, b"p1"));
    input.extend(raw_frame(0x00, b"cd", MASK));
    input.extend(raw_frame(0x80, b"ef", MASK));
    let mut c = frames();
    assert_eq!(
        run(&mut c, &input).unwrap(),
        [ClientMessage::Ping, ClientMessage::Text("abcdef".into())]
    );
    let out = c.take_output().unwrap();
    let replies = decode_server_frames(&out);
    assert_eq!(replies.len(), 1);
    assert_eq!(
        (replies[0].opcode, &replies[0].payload[..]),
        (10, &b"p1"[..])
    );
}

#[test]
fn every_ping_gets_its_pong_in_order() {
    let mut input = client_frame(9, b"1");
    input.extend(client_frame(9, b"2"));
    input.extend(client_frame(9, b""));
    let mut c = frames();
    assert_eq!(run(&mut c, &input).unwrap().len(), 3);
    let out = c.take_output().unwrap();
    let pongs: Vec<_> = decode_server_frames(&out)
        .into_iter()
        .map(|f| (f.opcode, f.payload))
        .collect();
    assert_eq!(
        pongs,
        [(10, b"1".to_vec()), (10, b"2".to_vec()), (10, Vec::new())]
    );
}

#[test]
fn byte_at_a_time_gives_the_same_messages() {
    let mut input = client_frame(1, "x".repeat(300).as_bytes());
    input.extend(client_frame(9, b"ping"));
    input.extend(client_frame(2, &[9; 130]));
    let mut c = frames();
    let mut got = Vec::new();
    for b in &input {
        got.extend(run(&mut c, std::slice::from_ref(b)).unwrap());
    }
    assert_eq!(
        got,
        [
            ClientMessage::Text("x".repeat(300)),
            ClientMessage::Ping,
            ClientMessage::Binary(Bytes::from(vec![9; 130])),
        ]
    );
}

#[test]
fn input_larger_than_the_read_buffer_decodes() {
    // Many frames and one 16-bit-length frame in a single feed, well over READ_BUFFER_SIZE.
    let mut c = ClientFrames::new(100_000, 100_000);
    let mut input = Vec::new();
    for i in 0..50 {
        input.extend(client_frame(1, format!("message {i}").as_bytes()));
    }
    input.extend(client_frame(2, &[5; 40_000]));
    assert!(input.len() > 100 * READ_BUFFER_SIZE);
    let got = run(&mut c, &input).unwrap();
    assert_eq!(got.len(), 51);
    assert_eq!(got[49], ClientMessage::Text("message 49".into()));
    assert_eq!(got[50], ClientMessage::Binary(Bytes::from(vec![5; 40_000])));
}

#[test]
fn client_close_is_answered_and_ends_reading() {
    let mut input = client_frame(8, &close_payload(1000, b"bye"));
    input.extend(client_frame(1, b"after close"));
    let mut c = frames();
    assert_eq!(
        run(&mut c, &input).unwrap(),
        [ClientMessage::Close(Some((1000, "bye".into())))]
    );
    assert!(c.is_closed());
    let reply = decode_server_frames(&c.take_output().unwrap());
    assert_eq!(reply.len(), 1);
    assert_eq!(
        (reply[0].opcode, &reply[0].payload[..]),
        (8, &b"\x03\xe8bye"[..])
    );
    // Further input is ignored.
    assert_eq!(run(&mut c, &client_frame(9, b"x")).unwrap(), []);
    assert_eq!(c.take_output(), None);
}

#[test]
fn empty_client_close_gets_an_empty_reply() {
    let mut c = frames();
    assert_eq!(
        run(&mut c, &client_frame(8, b"")).unwrap(),
        [ClientMessage::Close(None)]
    );
    assert_eq!(&c.take_output().unwrap()[..], [0x88, 0]);
}

#[test]
fn server_close_waits_for_the_clients_reply() {
    let mut c = frames();
    c.close(1001, "going away");
    assert!(c.is_closing() && !c.is_closed());
    assert_eq!(c.take_output().unwrap(), close_frame(1001, "going away"));
    // Data sent before the client saw our close still arrives; pings are no longer answered.
    let mut input = client_frame(1, b"late");
    input.extend(client_frame(9, b"p"));
    input.extend(client_frame(8, &close_payload(1001, b"")));
    assert_eq!(
        run(&mut c, &input).unwrap(),
        [
            ClientMessage::Text("late".into()),
            ClientMessage::Ping,
            ClientMessage::Close(Some((1001, String::new()))),
        ]
    );
    assert!(c.is_closed());
    assert_eq!(c.take_output(), None);
    // Closing again is a no-op.
    c.close(1000, "");
    assert_eq!(c.take_output(), None);
}

#[test]
fn server_close_reason_is_cut_to_fit() {
    let mut c = frames();
    c.close(1000, &"é".repeat(80));
    let out = c.take_output().unwrap();
    assert_eq!(out, close_frame(1000, &"é".repeat(61)));
}

#[test]
fn protocol_errors_are_1002() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (raw_frame(0xC1, b"x", MASK), "reserved bits set"),
        (raw_frame(0x91, b"x", MASK), "reserved bits set"),
        (raw_frame(0x81, b"x", None), "unmasked client frame"),
        (raw_frame(0x83, b"x", MASK), "reserved opcode"),
        (raw_frame(0x8B, b"x", MASK), "reserved opcode"),
        (raw_frame(0x09, b"x", MASK), "fragmented control frame"),
        (
            raw_frame(0x89, &[0; 126], MASK),
            "control frame over 125 bytes",
        ),
        (
            raw_frame(0x80, b"x", MASK),
            "continuation frame outside a message",
        ),
        (
            [raw_frame(0x01, b"a", MASK), raw_frame(0x81, b"b", MASK)].concat(),
            "new message inside a fragmented one",
        ),
        (client_frame(8, b"\x03"), "close payload of one byte"),
    ];
    for (input, reason) in cases {
        let err = error_of(&input);
        assert_eq!(err, ClientError::Protocol(reason), "{input:02x?}");
        assert_eq!((err.close_code(), err.reason()), (1002, reason));
    }
}

#[test]
fn close_codes_a_peer_may_not_send_are_1002() {
    for code in [
        0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2999, 5000, 65535,
    ] {
        let err = error_of(&client_frame(8, &close_payload(code, b"")));
        assert_eq!(err, ClientError::Protocol("invalid close code"), "{code}");
        assert_eq!(err.close_code(), 1002);
    }
    // The allowed ones are echoed.
    for code in [1000, 1001, 1003, 1007, 1011, 1012, 1013, 3000, 4999] {
        let mut c = frames();
        let got = run(&mut c, &client_frame(8, &close_payload(code, b""))).unwrap();
        assert_eq!(got, [ClientMessage::Close(Some((code, String::new())))]);
    }
}

#[test]
fn invalid_utf8_is_1007() {
    let cases = [
        client_frame(1, b"ok \xff"),
        // A sequence split across fragments is fine; a truncated one at the end is not.
        [raw_frame(0x01, b"\xc3", MASK), raw_frame(0x80, b"(", MASK)].concat(),
        client_frame(8, &close_payload(1000, b"\xff")),
    ];
    for input in cases {
        let err = error_of(&input);
        assert_eq!(
            (err.clone(), err.close_code()),
            (ClientError::InvalidUtf8, 1007)
        );
    }
    let mut c = frames();
    let split = [
        raw_frame(0x01, b"\xc3", MASK),
        raw_frame(0x80, b"\xa9", MASK),
    ]
    .concat();
    assert_eq!(
        run(&mut c, &split).unwrap(),
        [ClientMessage::Text("é".into())]
    );
}

#[test]
fn oversized_frames_and_messages_are_1009() {
    // A frame over max_frame_size is refused from its header, before the payload arrives.
    let whole = raw_frame(0x82, &[0; 513], MASK);
    let err = error_of(&whole[..8]);
    assert_eq!(
        err,
        ClientError::TooBig {
            size: 513,
            max: 512
        }
    );
    assert_eq!(err.close_code(), 1009);
    // Every frame within limits, the message over max_message_size.
    let input = [
        raw_frame(0x02, &[0; 500], MASK),
        raw_frame(0x00, &[0; 500], MASK),
        raw_frame(0x80, &[0; 500], MASK),
    ]
    .concat();
    let err = error_of(&input);
    assert_eq!(err.close_code(), 1009);
    // A 64-bit length no buffer could hold.
    let mut huge = vec![0x82, 0xFF];
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    huge.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(error_of(&huge).close_code(), 1009);
}

#[test]
fn after_an_error_input_is_ignored() {
    let mut c = frames();
    assert!(run(&mut c, &raw_frame(0x81, b"x", None)).is_err());
    assert_eq!(run(&mut c, &client_frame(1, b"y")).unwrap(), []);
    assert!(c.is_closed());
}

#[test]
fn idle_state_is_small() {
    // The struct itself; on the heap only tungstenite's READ_BUFFER_SIZE read buffer.
    let size = std::mem::size_of::<ClientFrames>();
    assert!(size <= 384, "ClientFrames is {size} bytes");
}

#[test]
fn drained_input_does_not_keep_a_large_buffer() {
    let mut c = ClientFrames::new(1 << 20, 1 << 20);
    run(&mut c, &client_frame(2, &vec![1; 100_000])).unwrap();
    assert!(c.input.buf.capacity() <= IDLE_INPUT_CAPACITY);
}
