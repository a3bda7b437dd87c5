//! Fuzz target: the SSE parser never panics, and where a stream is split into chunks does not
//! change what it reports.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluicegate::codec::sse_parse::SseParser;

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose the split point; the rest is the stream.
    let (cut, stream) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => return,
    };
    let cut = cut % (stream.len() + 1);
    let (head, tail) = stream.split_at(cut);

    let mut whole = SseParser::new();
    let all = whole.feed(stream);

    let mut split = SseParser::new();
    let mut got = split.feed(head);
    got.extend(split.feed(tail));

    assert_eq!(got, all);
    assert_eq!(split.last_event_id(), whole.last_event_id());
    assert_eq!(split.retry_ms(), whole.retry_ms());
    assert_eq!(split.comments_seen(), whole.comments_seen());
    assert_eq!(split.last_comment(), whole.last_comment());
});
