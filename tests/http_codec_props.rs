//! Property tests for the HTTP/1.1 request codec and the query decoder, through the public API:
//! any split of valid pipelined requests decodes to the same requests as the whole buffer (and
//! to what was sent), arbitrary bytes never panic and decode the same whole or in pieces, and
//! query encode -> decode round-trips.

#[path = "support/http_body.rs"]
mod http_body;

use bytes::BytesMut;
use proptest::prelude::*;
use sluicegate::codec::http1::{HttpError, Limits, Method, Request, RequestDecoder};
use sluicegate::codec::query;

/// What a decoder produced from some input: the requests, then the error that stopped it.
#[derive(Debug, PartialEq)]
struct Outcome {
    requests: Vec<Request>,
    error: Option<HttpError>,
}

fn decode_whole(input: &[u8], limits: &Limits) -> Outcome {
    decode_pieces(input, &[], limits)
}

/// Feed `input` cut at `cuts` (any order, any values; taken modulo the length), draining the
/// decoder after every piece.
fn decode_pieces(input: &[u8], cuts: &[usize], limits: &Limits) -> Outcome {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| c % (input.len() + 1))
        .chain([input.len()])
        .collect();
    points.sort_unstable();
    let mut dec = RequestDecoder::new(limits.clone());
    let mut buf = BytesMut::new();
    let mut out = Outcome {
        requests: Vec::new(),
        error: None,
    };
    let mut start = 0;
    for end in points {
        buf.extend_from_slice(&input[start..end]);
        start = end;
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(req)) => out.requests.push(req),
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            }
        }
    }
    out
}

/// One generated request and how its body is framed on the wire.
#[derive(Debug, Clone)]
struct Spec {
    method: &'static str,
    target: String,
    http10: bool,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// None: Content-Length; Some(sizes): chunked, cut into chunks of these sizes (cycled).
    chunks: Option<Vec<usize>>,
    trailer: bool,
    upper_hex: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    let method = prop::sample::select(vec![
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
    ]);
    let target = "/[a-zA-Z0-9/._~%=&+-]{0,40}(\\?[a-zA-Z0-9=&%+/]{0,20})?";
    // Names prefixed so they never collide with the framing headers the test controls.
    let header = ("x-[A-Za-z0-9-]{1,12}", "[!-~]([ -~]{0,20}[!-~])?");
    (
        method,
        target,
        any::<bool>(),
        prop::collection::vec(header, 0..5),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::option::of(prop::collection::vec(1usize..70, 1..6)),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(method, target, http10, headers, body, chunks, trailer, upper_hex)| Spec {
                method,
                target,
                // Chunked framing is refused on HTTP/1.0, so only use 1.0 with Content-Length.
                http10: http10 && chunks.is_none(),
                headers,
                body,
                chunks,
                trailer,
                upper_hex,
            },
        )
}

fn encode(spec: &Spec, out: &mut Vec<u8>) {
    let version = if spec.http10 { "1.0" } else { "1.1" };
    out.extend_from_slice(format!("{} {} HTTP/{version}\r\n", spec.method, spec.target).as_bytes());
    for (n, v) in &spec.headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    // After the generated headers, so `matches_spec` can compare those by position.
    out.extend_from_slice(b"Host: h\r\n");
    let upper_hex = spec.upper_hex;
    http_body::encode_body(out, &spec.body, spec.chunks.as_deref(), spec.trailer, |n| {
        if upper_hex {
            format!("{n:X};ext=1\r\n")
        } else {
            format!("{n:x}\r\n")
        }
    });
}

fn matches_spec(req: &Request, spec: &Spec) -> bool {
    let method = Method::from_token(spec.method);
    let headers_ok = spec
        .headers
        .iter()
        .zip(&req.headers)
        .all(|((n, v), (rn, rv))| *rn == n.to_ascii_lowercase() && rv == v.as_bytes());
    req.method == method
        && req.target == spec.target
        && req.minor_version == u8::from(!spec.http10)
        && headers_ok
        && req.body[..] == spec.body[..]
        && req.keep_alive != spec.http10
}

fn small_limits() -> Limits {
    Limits {
        max_head_bytes: 160,
        max_headers: 4,
        max_uri_bytes: 24,
        max_body_bytes: 64,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_pipelined_requests_decode_the_same_in_any_split(
        specs in prop::collection::vec(spec(), 1..5),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = Vec::new();
        for s in &specs {
            encode(s, &mut wire);
        }
        let limits = Limits::default();
        let whole = decode_whole(&wire, &limits);
        prop_assert_eq!(&whole.error, &None);
        prop_assert_eq!(whole.requests.len(), specs.len());
        for (req, s) in whole.requests.iter().zip(&specs) {
            prop_assert!(matches_spec(req, s), "decoded {:?}\nfrom {:?}", req, s);
        }
        prop_assert_eq!(decode_pieces(&wire, &cuts, &limits), whole);
    }

    /// Any CRLF of a head turned into a bare LF is refused, whichever line it ends (a head a
    /// CRLF-only proxy would split differently must never be read).
    #[test]
    fn a_bare_lf_anywhere_in_the_head_is_refused(
        s in spec(),
        pick in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut wire = Vec::new();
        encode(&s, &mut wire);
        let head_len = wire.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |p| p + 4);
        let crs: Vec<usize> = (0..head_len).filter(|&i| wire[i] == b'\r').collect();
        let at = crs[pick.index(crs.len())];
        wire.remove(at);
        let limits = Limits::default();
        let whole = decode_whole(&wire, &limits);
        prop_assert_eq!(&whole.error, &Some(HttpError::BareLineFeed));
        prop_assert!(whole.requests.is_empty());
        prop_assert_eq!(decode_pieces(&wire, &cuts, &limits), whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_split_does_not_matter(
        input in prop::collection::vec(any::<u8>(), 0..400),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let limits = small_limits();
        prop_assert_eq!(decode_pieces(&input, &cuts, &limits), decode_whole(&input, &limits));
    }

    /// Valid requests with a few bytes overwritten reach the deep states (chunk framing,
    /// trailers, limits) far more often than uniform noise does.
    #[test]
    fn mutated_requests_decode_the_same_in_any_split(
        specs in prop::collection::vec(spec(), 1..4),
        edits in prop::collection::vec((any::<usize>(), prop::sample::select(
            b"\r\n :;0aF\t%\x00\xff".to_vec())), 1..4),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        small in any::<bool>(),
    ) {
        let mut wire = Vec::new();
        for s in &specs {
            encode(s, &mut wire);
        }
        let len = wire.len();
        for (at, byte) in edits {
            wire[at % len] = byte;
        }
        let limits = if small { small_limits() } else { Limits::default() };
        prop_assert_eq!(decode_pieces(&wire, &cuts, &limits), decode_whole(&wire, &limits));
    }

    #[test]
    fn query_round_trip(
        params in prop::collection::vec((".{0,12}", ".{0,12}"), 0..6),
        plus_for_space in any::<bool>(),
    ) {
        let encoded: Vec<String> = params
            .iter()
            .map(|(n, v)| format!("{}={}", form_encode(n, plus_for_space), form_encode(v, plus_for_space)))
            .collect();
        let query_string = encoded.join("&");
        let decoded: Result<Vec<(String, String)>, _> = query::pairs(&query_string)
            .map(|p| p.map(|(n, v)| (n.into_owned(), v.into_owned())))
            .collect();
        prop_assert_eq!(decoded, Ok(params.clone()));
        if let Some((name, value)) = params.first() {
            let expected = params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            prop_assert_eq!(query::first(&query_string, name), Ok(expected));
            let encoded_value = form_encode(value, plus_for_space);
            prop_assert_eq!(query::percent_decode(&encoded_value).map(|v| v.into_owned()), Ok(value.clone()));
        }
    }

    #[test]
    fn query_decoding_never_panics(s in "[a-z0-9%+=&\u{e9}]{0,40}") {
        let _ = query::pairs(&s).count();
        let _ = query::percent_decode_path(&s);
    }
}

/// Tiny form encoder: unreserved characters as they are, space as '+' or %20, everything else
/// %XX per UTF-8 byte.
fn form_encode(s: &str, plus_for_space: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            b' ' if plus_for_space => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
