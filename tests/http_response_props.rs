//! Property tests for the client side of the HTTP/1.1 codec, through the public API: a response
//! with any status, headers and body, chunked or not, after any interim responses, decodes to
//! the same status, headers and kept body prefix in any split; arbitrary bytes never panic and
//! give the same outcome whole or in pieces.

#[path = "support/http_body.rs"]
mod http_body;

use bytes::BytesMut;
use proptest::prelude::*;
use sluicegate::codec::http1::client::{Response, ResponseDecoder, ResponseError};

const KEPT: usize = 64;
const MAX_BODY: usize = 4096;

/// Feed `input` cut at `cuts` (taken modulo the length), draining after every piece; at the end
/// signal EOF if nothing came out yet. The responses, then the error that stopped it.
fn decode_pieces(input: &[u8], cuts: &[usize]) -> (Vec<Response>, Option<ResponseError>) {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| c % (input.len() + 1))
        .chain([input.len()])
        .collect();
    points.sort_unstable();
    let mut dec = ResponseDecoder::new(KEPT, MAX_BODY);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut start = 0;
    for end in points {
        buf.extend_from_slice(&input[start..end]);
        start = end;
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    if !buf.is_empty() || out.is_empty() {
        match dec.finish_eof(&mut buf) {
            Ok(r) => out.push(r),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

#[derive(Debug, Clone)]
struct Spec {
    status: u16,
    interim: bool,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// None: Content-Length; Some(sizes): chunked in chunks of these sizes (cycled).
    chunks: Option<Vec<usize>>,
    trailer: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    // Names prefixed so they never collide with the framing headers the test controls.
    let header = ("x-[a-z0-9-]{1,12}", "[!-~]([ -~]{0,20}[!-~])?");
    (
        // 1xx are interim and 204/304 carry no body: generate final statuses with bodies.
        (200u16..600).prop_filter("has a body", |s| *s != 204 && *s != 304),
        any::<bool>(),
        prop::collection::vec(header, 0..6),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::option::of(prop::collection::vec(1usize..70, 1..6)),
        any::<bool>(),
    )
        .prop_map(|(status, interim, headers, body, chunks, trailer)| Spec {
            status,
            interim,
            headers,
            body,
            chunks,
            trailer,
        })
}

fn encode(spec: &Spec, out: &mut Vec<u8>) {
    if spec.interim {
        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    out.extend_from_slice(format!("HTTP/1.1 {} Whatever\r\n", spec.status).as_bytes());
    for (n, v) in &spec.headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    http_body::encode_body(out, &spec.body, spec.chunks.as_deref(), spec.trailer, |n| {
        format!("{n:x};ext=1\r\n")
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn responses_decode_the_same_in_any_split(
        specs in prop::collection::vec(spec(), 1..4),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = Vec::new();
        for s in &specs {
            encode(s, &mut wire);
        }
        let (responses, error) = decode_pieces(&wire, &cuts);
        prop_assert_eq!(error, None);
        prop_assert_eq!(responses.len(), specs.len());
        for (r, s) in responses.iter().zip(&specs) {
            prop_assert_eq!(r.status, s.status);
            prop_assert_eq!(&r.body[..], &s.body[..s.body.len().min(KEPT)]);
            prop_assert!(r.reusable);
            for (n, v) in &s.headers {
                prop_assert!(
                    r.headers.iter().any(|(rn, rv)| rn == n && rv == v),
                    "{}: {} missing from {:?}", n, v, r.headers
                );
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_any_split_agrees(
        input in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        prop_assert_eq!(decode_pieces(&input, &cuts), decode_pieces(&input, &[]));
    }

    /// Mostly-valid input: a real response with one byte changed, so the fuzzing reaches the
    /// body framing rather than stopping at the status line.
    #[test]
    fn a_corrupted_response_gives_the_same_outcome_in_any_split(
        s in spec(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = Vec::new();
        encode(&s, &mut wire);
        let i = at.index(wire.len());
        wire[i] = byte;
        prop_assert_eq!(decode_pieces(&wire, &cuts), decode_pieces(&wire, &[]));
    }
}
