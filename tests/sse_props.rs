//! Property tests for the SSE wire format: what the encoder writes, the spec-following parser
//! reads back, however the stream is split into chunks.

use bytes::BytesMut;
use proptest::prelude::*;
use sluicegate::codec::sse::{
    encode_comment, encode_event, encode_retry, encoded_len_hint, validate, FrameError, SseEvent,
};
use sluicegate::codec::sse_parse::{ParsedEvent, SseParser};

/// An owned event, so proptest can generate it; `as_event` borrows it as an [`SseEvent`].
#[derive(Clone, Debug)]
struct OwnedEvent {
    id: Option<String>,
    event: Option<String>,
    data: String,
    retry_ms: Option<u32>,
}

impl OwnedEvent {
    fn as_event(&self) -> SseEvent<'_> {
        SseEvent {
            id: self.id.as_deref(),
            event: self.event.as_deref(),
            data: self.data.as_bytes(),
            retry_ms: self.retry_ms,
        }
    }
}

/// Single-line text: no CR or LF (and no NUL when `allow_nul` is false), often with leading
/// spaces or colons, sometimes empty.
fn field_text(allow_nul: bool) -> BoxedStrategy<String> {
    let any_line = if allow_nul {
        "[^\r\n]{0,16}"
    } else {
        "[^\r\n\x00]{0,16}"
    };
    prop_oneof![Just(String::new()), " {0,3}[a-z0-9:]{0,8}", any_line,].boxed()
}

/// Payloads built from pieces that stress the line splitting: every kind of break, empty
/// lines, leading spaces, lines starting with ':', and arbitrary text.
fn data_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\r".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just(" ".to_string()),
        Just(":".to_string()),
        Just("data: x".to_string()),
        "[^\r\n]{0,12}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

fn owned_event() -> impl Strategy<Value = OwnedEvent> {
    (
        prop::option::of(field_text(false)),
        prop::option::of(field_text(true)),
        data_text(),
        prop::option::of(any::<u32>()),
    )
        .prop_map(|(id, event, data, retry_ms)| OwnedEvent {
            id,
            event,
            data,
            retry_ms,
        })
}

/// What a client receives for `data`: every CRLF, CR or LF becomes one LF.
fn normalize_breaks(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

/// The events a spec-following client sees for `events`, tracking the persistent last id.
fn expected(events: &[OwnedEvent]) -> Vec<ParsedEvent> {
    let mut last_id = String::new();
    events
        .iter()
        .map(|ev| {
            if let Some(id) = &ev.id {
                last_id.clone_from(id);
            }
            ParsedEvent {
                event_type: match ev.event.as_deref() {
                    Some(t) if !t.is_empty() => t.to_string(),
                    _ => "message".to_string(),
                },
                data: normalize_breaks(&ev.data),
                last_event_id: last_id.clone(),
                retry_ms: ev.retry_ms.map(u64::from),
            }
        })
        .collect()
}

fn encode_all(events: &[OwnedEvent]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for ev in events {
        encode_event(&mut out, &ev.as_event()).expect("generated events are valid");
    }
    out.to_vec()
}

/// Feeds `stream` cut at the given (sorted, deduplicated) offsets.
fn feed_in_chunks(stream: &[u8], cuts: &[usize]) -> (SseParser, Vec<ParsedEvent>) {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        let cut = cut.clamp(start, stream.len());
        events.extend(parser.feed(&stream[start..cut]));
        start = cut;
    }
    (parser, events)
}

fn cuts_for(len: usize, raw: &[prop::sample::Index]) -> Vec<usize> {
    let mut cuts: Vec<usize> = raw.iter().map(|i| i.index(len + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn single_event_round_trips(ev in owned_event()) {
        let stream = encode_all(std::slice::from_ref(&ev));
        let mut parser = SseParser::new();
        let got = parser.feed(&stream);
        prop_assert_eq!(got, expected(std::slice::from_ref(&ev)));
    }

    #[test]
    fn back_to_back_events_in_any_chunking_round_trip(
        events in prop::collection::vec(owned_event(), 1..6),
        raw_cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let stream = encode_all(&events);
        let cuts = cuts_for(stream.len(), &raw_cuts);
        let (parser, got) = feed_in_chunks(&stream, &cuts);
        let want = expected(&events);
        prop_assert_eq!(parser.last_event_id(), want.last().map_or("", |e| e.last_event_id.as_str()));
        let last_retry = events.iter().rev().find_map(|e| e.retry_ms).map(u64::from);
        prop_assert_eq!(parser.retry_ms(), last_retry);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn byte_at_a_time_equals_one_feed(events in prop::collection::vec(owned_event(), 1..4)) {
        let stream = encode_all(&events);
        let mut whole = SseParser::new();
        let all = whole.feed(&stream);
        let mut bytewise = SseParser::new();
        let mut got = Vec::new();
        for b in &stream {
            got.extend(bytewise.feed(std::slice::from_ref(b)));
        }
        prop_assert_eq!(got, all);
    }

    #[test]
    fn comments_and_retry_frames_between_events_change_nothing_else(
        events in prop::collection::vec(owned_event(), 1..5),
        comment in any::<String>(),
        retry in any::<u32>(),
    ) {
        let mut out = BytesMut::new();
        for ev in &events {
            encode_comment(&mut out, &comment);
            encode_event(&mut out, &ev.as_event()).expect("valid");
        }
        encode_retry(&mut out, retry);
        let mut parser = SseParser::new();
        let got = parser.feed(&out);
        prop_assert_eq!(got, expected(&events));
        prop_assert_eq!(parser.retry_ms(), Some(u64::from(retry)));
        let lines_per_comment = 1 + normalize_breaks(&comment).matches('\n').count() as u64;
        prop_assert_eq!(parser.comments_seen(), lines_per_comment * events.len() as u64);
        let last_line = normalize_breaks(&comment).rsplit('\n').next().unwrap_or("").to_string();
        prop_assert_eq!(parser.last_comment(), Some(last_line.as_str()));
    }

    #[test]
    fn id_line_length_is_the_real_id_line_and_can_be_swapped(
        ev in owned_event(),
        other_id in "[^\r\n\x00]{0,16}",
        prefix in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut out = BytesMut::from(&prefix[..]);
        let id_len = encode_event(&mut out, &ev.as_event()).expect("valid");
        let frame = &out[prefix.len()..];
        prop_assert!(frame.len() <= encoded_len_hint(&ev.as_event()));
        match &ev.id {
            Some(id) => {
                let line = format!("id: {id}\n");
                prop_assert_eq!(&frame[..id_len], line.as_bytes());
            }
            None => prop_assert_eq!(id_len, 0),
        }
        // A caller shares the rest of the frame and puts another id line in front.
        let mut swapped = format!("id: {other_id}\n").into_bytes();
        swapped.extend_from_slice(&frame[id_len..]);
        let mut parser = SseParser::new();
        let got = parser.feed(&swapped);
        let mut want = expected(std::slice::from_ref(&ev));
        want[0].last_event_id = other_id;
        prop_assert_eq!(got, want);
    }

    #[test]
    fn validate_rejects_breaks_and_nul_in_id(
        head in "[^\r\n\x00]{0,8}", bad in prop::sample::select(vec!["\r", "\n", "\0"]), tail in ".{0,8}",
    ) {
        let id = format!("{head}{bad}{tail}");
        let ev = SseEvent { id: Some(&id), ..SseEvent::default() };
        let want = if bad == "\0" {
            FrameError::IdNul { at: head.len() }
        } else {
            FrameError::IdLineBreak { at: head.len() }
        };
        prop_assert_eq!(validate(&ev), Err(want.clone()));
        let mut out = BytesMut::new();
        prop_assert_eq!(encode_event(&mut out, &ev), Err(want));
        prop_assert!(out.is_empty());
    }

    #[test]
    fn validate_rejects_breaks_in_event_type(
        head in "[^\r\n]{0,8}", bad in prop::sample::select(vec!["\r", "\n"]), tail in ".{0,8}",
    ) {
        let event = format!("{head}{bad}{tail}");
        let ev = SseEvent { event: Some(&event), ..SseEvent::default() };
        prop_assert_eq!(validate(&ev), Err(FrameError::EventLineBreak { at: head.len() }));
    }

    #[test]
    fn validate_agrees_with_utf8_check(data in prop::collection::vec(any::<u8>(), 0..64)) {
        let ev = SseEvent { data: &data, ..SseEvent::default() };
        match std::str::from_utf8(&data) {
            Ok(_) => prop_assert_eq!(validate(&ev), Ok(())),
            Err(e) => prop_assert_eq!(validate(&ev), Err(FrameError::DataNotUtf8 { at: e.valid_up_to() })),
        }
    }

    #[test]
    fn parser_never_panics_and_chunking_does_not_matter(
        stream in prop::collection::vec(
            prop_oneof![
                Just(&b"\r"[..]), Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"data: x"[..]),
                Just(&b"data"[..]), Just(&b"id: 1"[..]), Just(&b"event:e"[..]), Just(&b"retry: 5"[..]),
                Just(&b": c"[..]), Just(&b"\xEF\xBB\xBF"[..]), Just(&b"\xEF\xBB"[..]), Just(&b"\xE2\x82"[..]),
            ].prop_map(<[u8]>::to_vec).boxed()
                .prop_union(prop::collection::vec(any::<u8>(), 0..4).boxed()),
            0..48,
        ).prop_map(|pieces| pieces.concat()),
        raw_cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut whole = SseParser::new();
        let all = whole.feed(&stream);
        let (split, got) = feed_in_chunks(&stream, &cuts_for(stream.len(), &raw_cuts));
        prop_assert_eq!(got, all);
        prop_assert_eq!(split.last_event_id(), whole.last_event_id());
        prop_assert_eq!(split.retry_ms(), whole.retry_ms());
        prop_assert_eq!(split.comments_seen(), whole.comments_seen());
    }
}

#[test]
fn prefixing_data_keywords_cannot_inject_fields() {
    let payload = "x\nid: evil\nevent: evil\n\ndata: evil";
    let ev = SseEvent {
        data: payload.as_bytes(),
        ..SseEvent::default()
    };
    let mut out = BytesMut::new();
    encode_event(&mut out, &ev).expect("valid");
    let got = SseParser::new().feed(&out);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, payload);
    assert_eq!(got[0].event_type, "message");
    assert_eq!(got[0].last_event_id, "");
}
