//! Fuzz the HTTP/1.1 response decoder (the webhook client's): never panic, and feeding the input
//! in pieces (cut where the fuzzer says) gives exactly what feeding it whole gives, EOF included.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluicegate::codec::http1::client::{Response, ResponseDecoder, ResponseError};

/// Small limits so the fuzzer reaches the body limit and the kept-prefix cut with short inputs.
const KEPT: usize = 16;
const MAX_BODY: usize = 128;

/// Responses decoded until the input ran out (then EOF) or the first error.
fn run(pieces: &[&[u8]]) -> (Vec<Response>, Option<ResponseError>) {
    let mut dec = ResponseDecoder::new(KEPT, MAX_BODY);
    let mut buf = BytesMut::new();
    let mut responses = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(r)) => {
                    assert!(r.body.len() <= KEPT, "kept more than asked");
                    responses.push(r);
                }
                Ok(None) => break,
                Err(e) => return (responses, Some(e)),
            }
        }
    }
    match dec.finish_eof(&mut buf) {
        Ok(r) => responses.push(r),
        Err(e) => return (responses, Some(e)),
    }
    (responses, None)
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
    assert_eq!(whole, split, "decoding in pieces differs from decoding whole");
});
