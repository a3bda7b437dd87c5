//! Fuzz credential extraction from arbitrary header bytes and query text: never panics, and
//! any token it returns follows the rules (non-empty, visible ASCII, bounded).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluicegate::internals::policy::{extract, MAX_TOKEN_LEN};

fuzz_target!(|data: &[u8]| {
    // `authorization \0 cookie \0 cookie... \0 query`: the first byte says whether there is
    // an Authorization header, the last piece is the query (skipped unless UTF-8).
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut pieces: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
    let query = pieces
        .pop()
        .and_then(|q| std::str::from_utf8(q).ok())
        .unwrap_or("");
    let authorization = if flags & 1 == 1 && !pieces.is_empty() {
        Some(pieces.remove(0))
    } else {
        None
    };
    // Short names so the fuzzer finds them; bit 1 and 2 turn the sources off.
    let param = if flags & 2 == 0 { "t" } else { "" };
    let cookie = if flags & 4 == 0 { "c" } else { "" };

    if let Ok(Some(c)) = extract(authorization, &pieces, query, param, cookie) {
        assert!(!c.token.is_empty() && c.token.len() <= MAX_TOKEN_LEN);
        assert!(c.token.bytes().all(|b| b.is_ascii_graphic()));
    }
});
