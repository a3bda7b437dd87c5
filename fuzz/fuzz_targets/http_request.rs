//! Fuzz the HTTP/1.1 request decoder: never panic, and feeding the input in pieces (cut where
//! the fuzzer says) gives exactly what feeding it whole gives.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluicegate::codec::http1::{HttpError, Limits, Request, RequestDecoder};

/// Small limits so the fuzzer reaches every limit check with short inputs.
fn limits() -> Limits {
    Limits {
        max_head_bytes: 256,
        max_headers: 8,
        max_uri_bytes: 64,
        max_body_bytes: 128,
    }
}

/// Requests decoded until the input ran out or the first error.
fn run(pieces: &[&[u8]]) -> (Vec<Request>, Option<HttpError>) {
    let mut dec = RequestDecoder::new(limits());
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(req)) => requests.push(req),
                Ok(None) => break,
                Err(e) => return (requests, Some(e)),
            }
        }
    }
    (requests, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    // First byte picks the cut, and every `step` bytes after it the input is cut again, so
    // both one split and many small pieces are exercised.
    let cut = usize::from(first) % (input.len() + 1);
    let step = usize::from(first % 16) + 1;
    let (head, tail) = input.split_at(cut);
    let mut pieces: Vec<&[u8]> = vec![head];
    pieces.extend(tail.chunks(step));

    let whole = run(&[input]);
    let split = run(&pieces);
    assert_eq!(
        whole, split,
        "decoding in pieces differs from decoding whole"
    );
});
