//! A record fetched from Kafka, and where its SSE event type comes from.
//!
//! The value goes to subscribers as it is. The event type is read from a header (CloudEvents
//! binary mode puts it in `ce_type`) or, only when configured, from a top-level JSON string
//! field of the value: then a copy of the value is parsed with `simd-json`, once per record.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use simd_json::prelude::ValueAsScalar;

/// The record header carrying a publisher's idempotency key (`?id=` / `Sluicegate-Id`): the
/// owner shard drops a record whose key it saw recently in the same partition.
pub const ID_HEADER: &str = "sluicegate-id";

/// One record read back from the external log (a Kafka record, a Redis stream entry) with its
/// place in the partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// Producer or log-append time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    /// Headers in the order the client library gives them (rskafka: sorted by name, one value
    /// per name).
    pub headers: Vec<(String, Bytes)>,
    /// The value; a tombstone (null value) is empty.
    pub value: Bytes,
    /// The event type when the log keeps it beside the value (a Redis entry's `type` field);
    /// Kafka records carry it in a header instead (see [`EventTypeRule`]).
    pub event_type: Option<Bytes>,
}

impl LogRecord {
    /// The publisher's idempotency key, when the record carries one.
    pub fn idempotency_key(&self) -> Option<&Bytes> {
        self.header(ID_HEADER).filter(|v| !v.is_empty())
    }

    /// The first header with this name.
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers
            .iter()
            .find_map(|(n, v)| (n == name).then_some(v))
    }
}

/// Where the event type of a record comes from. The header is looked at first (free); the JSON
/// field only when the header is absent or unusable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventTypeRule {
    /// Header holding the type, e.g. `ce_type`; `None` to not look at headers.
    pub header: Option<Box<str>>,
    /// Top-level JSON string field of the value holding the type; `None` to never parse.
    pub json_field: Option<Box<str>>,
}

impl EventTypeRule {
    /// The rule from the `[kafka]` settings: an empty name means "not used".
    pub fn new(header: &str, json_field: &str) -> Self {
        let some = |s: &str| (!s.is_empty()).then(|| Box::from(s));
        Self {
            header: some(header),
            json_field: some(json_field),
        }
    }

    /// The record's event type, or `None` when no configured source gives a usable one
    /// (absent, not UTF-8, empty, or containing a line break, which would break SSE framing).
    pub fn event_type<'r>(&self, record: &'r LogRecord) -> Option<Cow<'r, str>> {
        if let Some(found) = record.event_type.as_deref().and_then(usable) {
            return Some(Cow::Borrowed(found));
        }
        if let Some(name) = self.header.as_deref() {
            if let Some(found) = record.header(name).and_then(|v| usable(v)) {
                return Some(Cow::Borrowed(found));
            }
        }
        let field = self.json_field.as_deref()?;
        json_string_field(&record.value, field).map(Cow::Owned)
    }
}

/// `bytes` as an event type when it is one SSE can carry.
fn usable(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    let ok = !text.is_empty() && !text.contains(['\r', '\n']);
    ok.then_some(text)
}

/// The top-level string field `field` of the JSON object in `value`, if `value` is one and the
/// field is a usable event type. simd-json parses in place, so it works on a copy.
pub fn json_string_field(value: &[u8], field: &str) -> Option<String> {
    let mut copy = value.to_vec();
    let tape = simd_json::to_tape(&mut copy).ok()?;
    let root = tape.as_value();
    let found = root.get(field)?;
    let text = found.as_str()?;
    usable(text.as_bytes()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(headers: &[(&str, &[u8])], value: &[u8]) -> LogRecord {
        LogRecord {
            topic: Arc::from("t"),
            partition: 0,
            offset: 7,
            timestamp_ms: 0,
            key: None,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), Bytes::copy_from_slice(v)))
                .collect(),
            value: Bytes::copy_from_slice(value),
            event_type: None,
        }
    }

    #[test]
    fn header_gives_the_type() {
        let rule = EventTypeRule::new("ce_type", "");
        let r = record(&[("other", b"x"), ("ce_type", b"order.created")], b"{}");
        assert_eq!(rule.event_type(&r).as_deref(), Some("order.created"));
        assert_eq!(rule.event_type(&record(&[], b"{}")), None);
    }

    #[test]
    fn json_field_is_used_when_the_header_is_missing() {
        let rule = EventTypeRule::new("ce_type", "type");
        let r = record(
            &[],
            br#"{"id": 1, "type": "user.deleted", "nested": {"type": "no"}}"#,
        );
        assert_eq!(rule.event_type(&r).as_deref(), Some("user.deleted"));
        let r = record(&[("ce_type", b"from.header")], br#"{"type": "from.json"}"#);
        assert_eq!(rule.event_type(&r).as_deref(), Some("from.header"));
    }

    #[test]
    fn unusable_types_are_none() {
        let rule = EventTypeRule::new("ce_type", "type");
        for bad in [
            record(&[("ce_type", b"a\nb")], b"not json"),
            record(&[("ce_type", b"\xff")], br#"{"type": 5}"#),
            record(&[("ce_type", b"")], br#"{"type": "x\ry"}"#),
            record(&[], br#"["type", "array"]"#),
            record(&[], br#"{"nested": {"type": "deep"}}"#),
            record(&[], b""),
        ] {
            assert_eq!(rule.event_type(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn no_rule_no_type_and_no_parse() {
        let rule = EventTypeRule::new("", "");
        let r = record(&[("ce_type", b"x")], br#"{"type": "y"}"#);
        assert_eq!(rule.event_type(&r), None);
    }

    #[test]
    fn escaped_json_strings_are_decoded() {
        assert_eq!(
            json_string_field(br#"{"type": "a\u002eb"}"#, "type").as_deref(),
            Some("a.b")
        );
    }

    proptest! {
        #[test]
        fn arbitrary_values_and_headers_never_panic(
            value in proptest::collection::vec(any::<u8>(), 0..256),
            header in proptest::collection::vec(any::<u8>(), 0..32),
            field in "[a-z]{0,6}",
        ) {
            let rule = EventTypeRule::new("ce_type", &field);
            let r = record(&[("ce_type", &header)], &value);
            if let Some(t) = rule.event_type(&r) {
                prop_assert!(!t.is_empty() && !t.contains('\n') && !t.contains('\r'));
            }
            let _ = json_string_field(&value, &field);
        }

        #[test]
        fn json_objects_give_their_string_field(name in "[a-z._]{1,20}") {
            let value = format!(r#"{{"a": [1, 2, {{}}], "type": "{name}", "z": null}}"#);
            prop_assert_eq!(json_string_field(value.as_bytes(), "type"), Some(name));
        }
    }
}
