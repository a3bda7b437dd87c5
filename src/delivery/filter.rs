//! Subscriber filters: `?type=` (event types, any of) and `?key=` (exact key).
//!
//! Matched against the metadata kept beside each frame ([`EventMeta`]), so a filter costs a few
//! comparisons per delivery and never a parse of the payload.
use bytes::Bytes;

use crate::broker::EventMeta;
use crate::codec::query;

/// What a subscriber wants to see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Any of these types (empty: any type, including none).
    types: Vec<Box<str>>,
    /// Exactly this key.
    key: Option<Bytes>,
    /// Each of these headers with exactly this value (`?header.<name>=<value>`).
    headers: Vec<(Box<str>, Bytes)>,
}

/// Query parameters `header.<name>=<value>` filter on a record/publish header.
const HEADER_PARAM: &str = "header.";

impl EventFilter {
    /// Read `type` (repeatable, or comma-separated), `key` and `header.<name>` from a query
    /// string; `None` when none is given.
    pub fn from_query(q: &str) -> Result<Option<Self>, query::QueryError> {
        let types = query::all(q, "type")?;
        let key = query::first(q, "key")?.map(|k| Bytes::from(k.into_bytes()));
        let mut headers = Vec::new();
        for pair in query::pairs(q) {
            let (name, value) = pair?;
            if let Some(header) = name.strip_prefix(HEADER_PARAM).filter(|h| !h.is_empty()) {
                headers.push((header.into(), Bytes::from(value.into_owned().into_bytes())));
            }
        }
        Ok(Self::build(types.iter().map(String::as_str), key, headers))
    }

    /// The same filter from a WebSocket subscribe request's fields: `types` comma-separated,
    /// `key`, and header name/value pairs; `None` when none is given.
    pub fn from_fields(
        types: Option<&str>,
        key: Option<&str>,
        headers: impl IntoIterator<Item = (String, String)>,
    ) -> Option<Self> {
        let key = key.map(|k| Bytes::copy_from_slice(k.as_bytes()));
        let headers = headers
            .into_iter()
            .map(|(n, v)| (n.to_ascii_lowercase().into(), Bytes::from(v.into_bytes())))
            .collect();
        Self::build(types.into_iter(), key, headers)
    }

    /// A filter of the types in `type_lists` (each comma-separated), `key` and `headers`;
    /// `None` when it would let everything through.
    fn build<'a>(
        type_lists: impl Iterator<Item = &'a str>,
        key: Option<Bytes>,
        headers: Vec<(Box<str>, Bytes)>,
    ) -> Option<Self> {
        let types: Vec<Box<str>> = type_lists
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Into::into)
            .collect();
        if types.is_empty() && key.is_none() && headers.is_empty() {
            return None;
        }
        Some(Self {
            types,
            key,
            headers,
        })
    }

    pub fn matches(&self, meta: &EventMeta) -> bool {
        let type_ok = self.types.is_empty()
            || meta
                .event_type
                .as_deref()
                .is_some_and(|t| self.types.iter().any(|w| &**w == t));
        let key_ok = self
            .key
            .as_ref()
            .is_none_or(|k| meta.key.as_ref() == Some(k));
        let headers_ok = self.headers.iter().all(|(n, v)| meta.header(n) == Some(v));
        type_ok && key_ok && headers_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(t: Option<&str>, k: Option<&str>) -> EventMeta {
        EventMeta {
            headers: crate::broker::shared_headers(&[("region".into(), Bytes::from_static(b"eu"))]),
            event_type: t.map(Into::into),
            key: k.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        }
    }

    #[test]
    fn no_filter_without_type_or_key() {
        assert_eq!(EventFilter::from_query("lastEventId=x"), Ok(None));
    }

    #[test]
    fn types_are_any_of_and_key_is_exact() {
        let f = EventFilter::from_query("type=a,b&type=c&key=k1")
            .unwrap()
            .unwrap();
        assert!(f.matches(&meta(Some("b"), Some("k1"))));
        assert!(f.matches(&meta(Some("c"), Some("k1"))));
        assert!(!f.matches(&meta(Some("d"), Some("k1"))));
        assert!(!f.matches(&meta(None, Some("k1"))));
        assert!(!f.matches(&meta(Some("a"), Some("k2"))));
        assert!(!f.matches(&meta(Some("a"), None)));
        let only_key = EventFilter::from_query("key=k%20x").unwrap().unwrap();
        assert!(only_key.matches(&meta(None, Some("k x"))));
    }

    #[test]
    fn header_filters_need_every_named_header_with_its_value() {
        let eu = EventFilter::from_query("header.Region=eu")
            .unwrap()
            .unwrap();
        assert!(
            eu.matches(&meta(None, None)),
            "header names are case-insensitive"
        );
        let us = EventFilter::from_query("header.region=us")
            .unwrap()
            .unwrap();
        assert!(!us.matches(&meta(None, None)));
        let missing = EventFilter::from_query("header.tenant=a").unwrap().unwrap();
        assert!(!missing.matches(&meta(None, None)));
        assert_eq!(
            EventFilter::from_query("header.=x"),
            Ok(None),
            "no name: no filter"
        );
    }
}
