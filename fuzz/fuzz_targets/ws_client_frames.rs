//! Fuzz the WebSocket client-frame decoder: never panic, the reply bytes stay bounded by what
//! was fed, nothing is yielded after a close or an error, and where the input is cut does not
//! change what is decoded or answered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluicegate::codec::ws::{ClientError, ClientFrames, ClientMessage};

/// Everything one run produced: messages, the final error if any, the reply bytes.
#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<ClientMessage>,
    error: Option<ClientError>,
    output: Vec<u8>,
}

/// Feeds `pieces` in order, decoding after each; when `close_at` is reached the server starts
/// the closing handshake itself.
fn run(pieces: &[&[u8]], close_at: Option<usize>) -> Outcome {
    // Small limits, so the fuzzer reaches both size checks with short inputs.
    let mut dec = ClientFrames::new(300, 200);
    let mut out = Outcome {
        messages: Vec::new(),
        error: None,
        output: Vec::new(),
    };
    let mut fed = 0;
    for (i, piece) in pieces.iter().enumerate() {
        if close_at == Some(i) {
            dec.close(1001, "going away");
        }
        dec.feed(piece);
        fed += piece.len();
        loop {
            match dec.next() {
                Ok(Some(m)) => {
                    let last = matches!(m, ClientMessage::Close(_));
                    out.messages.push(m);
                    if last {
                        assert!(dec.is_closed());
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(dec.is_closed());
                    assert!(matches!(e.close_code(), 1002 | 1007 | 1009));
                    assert!(e.reason().len() <= 123);
                    out.error = Some(e);
                    break;
                }
            }
        }
        if let Some(bytes) = dec.take_output() {
            out.output.extend_from_slice(&bytes);
        }
        // Replies never outgrow the input: a pong or a close reply is never longer than the
        // frame it answers, plus one close frame of our own (at most 127 bytes).
        assert!(out.output.len() <= fed + 127, "{} > {} + 127", out.output.len(), fed);
        if dec.is_closed() {
            // Closed means closed: more input yields nothing.
            dec.feed(b"\x81\x81\x00\x00\x00\x00a");
            assert!(matches!(dec.next(), Ok(None)));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    // The first byte picks a cut, a chunk size for what follows it and whether the server
    // closes first (before the second piece).
    let cut = usize::from(first) % (input.len() + 1);
    let step = usize::from(first % 16) + 1;
    let close_at = (first & 0x80 != 0).then_some(1);
    let (head, tail) = input.split_at(cut);
    let mut pieces: Vec<&[u8]> = vec![head];
    pieces.extend(tail.chunks(step));
    if tail.is_empty() {
        // Keep a second piece, so a server close between the two happens here too.
        pieces.push(tail);
    }

    // The same bytes whole (the close, if any, between the same two byte offsets).
    let whole_pieces: Vec<&[u8]> = vec![head, tail];
    let whole = run(&whole_pieces, close_at);
    let split = run(&pieces, close_at);
    assert_eq!(whole, split, "decoding in pieces differs from decoding whole");
});
