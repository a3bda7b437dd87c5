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
}

impl EventFilter {
    /// Read `type` (repeatable, or comma-separated) and `key` from a query string; `None` when
    /// neither is given.
    pub fn from_query(q: &str) -> Result<Option<Self>, query::QueryError> {
        let types: Vec<Box<str>> = query::all(q, "type")?
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Into::into)
            .collect();
        let key = query::first(q, "key")?.map(|k| Bytes::from(k.into_bytes()));
        if types.is_empty() && key.is_none() {
            return Ok(None);
        }
        Ok(Some(Self { types, key }))
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
        type_ok && key_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(t: Option<&str>, k: Option<&str>) -> EventMeta {
        EventMeta {
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
}
