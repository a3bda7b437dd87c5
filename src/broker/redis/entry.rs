//! The fields of a stream entry, the one layout both modes write and broker mode reads back.
//!
//! An entry is `id`? `type`? `key`? `header.<name>`* `data`: the gateway's event id (sink mode
//! only: in broker mode the entry's own stream id is the event's place), the event type, the
//! publisher's or Kafka record's key, each header under `header.` + its lower-case name (the
//! publisher's idempotency key is the `sluicegate-id` header, as in Kafka), and the data last.
//! Fields that are absent are not written. An independent consumer reads them with `XRANGE`.
//!
//! Stream ids in broker mode are `0-<offset + 1>`: `XADD key 0-* ...` (Redis 7) makes Redis
//! number a partition's entries 1, 2, 3... whichever instance appends, so an offset is the same
//! on every instance and a client's id resumes anywhere.
use std::sync::Arc;

use bytes::Bytes;

use crate::broker::plane::LogRecord;

pub const FIELD_ID: &str = "id";
pub const FIELD_TYPE: &str = "type";
pub const FIELD_KEY: &str = "key";
pub const FIELD_DATA: &str = "data";
/// Prefix of a header's field name.
pub const HEADER_PREFIX: &str = "header.";

/// The parts of one event an entry is made of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryParts<'a> {
    pub id: Option<&'a str>,
    pub event_type: Option<&'a [u8]>,
    pub key: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, &'a [u8])>,
    pub data: &'a [u8],
}

/// The field/value pairs of an entry, in the order above.
pub fn encode(parts: &EntryParts<'_>) -> Vec<(Bytes, Bytes)> {
    let mut fields = Vec::with_capacity(4 + parts.headers.len());
    let copy = |b: &[u8]| Bytes::copy_from_slice(b);
    if let Some(id) = parts.id {
        fields.push((Bytes::from_static(FIELD_ID.as_bytes()), copy(id.as_bytes())));
    }
    if let Some(t) = parts.event_type {
        fields.push((Bytes::from_static(FIELD_TYPE.as_bytes()), copy(t)));
    }
    if let Some(k) = parts.key {
        fields.push((Bytes::from_static(FIELD_KEY.as_bytes()), copy(k)));
    }
    for (name, value) in &parts.headers {
        let mut field = String::with_capacity(HEADER_PREFIX.len() + name.len());
        field.push_str(HEADER_PREFIX);
        field.push_str(&name.to_ascii_lowercase());
        fields.push((Bytes::from(field), copy(value)));
    }
    fields.push((Bytes::from_static(FIELD_DATA.as_bytes()), copy(parts.data)));
    fields
}

/// Why an entry read back is not an event of this gateway.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("stream id `{0}` is not 0-<n> with n >= 1 (was the stream written by something other than a gateway in broker mode?)")]
    ForeignId(String),
    #[error("entry {0} has no `data` field")]
    NoData(String),
    #[error("entry {0} has a field name that is not UTF-8")]
    FieldName(String),
}

/// The offset a broker-mode stream id stands for: `0-n` is offset `n - 1`.
pub fn offset_of(stream_id: &str) -> Result<u64, EntryError> {
    let foreign = || EntryError::ForeignId(stream_id.to_owned());
    let seq = stream_id.strip_prefix("0-").ok_or_else(foreign)?;
    // Redis never writes leading zeros; refusing them keeps id <-> offset one to one.
    if seq.is_empty() || seq.starts_with('0') || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return Err(foreign());
    }
    let n: u64 = seq.parse().map_err(|_| foreign())?;
    n.checked_sub(1).ok_or_else(foreign)
}

/// The stream id of `offset` (what `XRANGE` starts at).
pub fn stream_id_of(offset: u64) -> String {
    let mut id = String::with_capacity(24);
    id.push_str("0-");
    id.push_str(itoa::Buffer::new().format(offset.saturating_add(1)));
    id
}

/// The id `XREAD` takes to return entries from `offset` on (it returns ids above the one given).
pub fn read_after(offset: u64) -> String {
    let mut id = String::with_capacity(24);
    id.push_str("0-");
    id.push_str(itoa::Buffer::new().format(offset));
    id
}

/// A broker-mode entry as a record of `topic`'s `partition`. Unknown fields are ignored (a
/// newer gateway may write more); a repeated field keeps its first value.
pub fn decode(
    topic: &Arc<str>,
    partition: i32,
    stream_id: &str,
    fields: Vec<(Bytes, Bytes)>,
) -> Result<LogRecord, EntryError> {
    let offset = offset_of(stream_id)?;
    let mut record = LogRecord {
        topic: Arc::clone(topic),
        partition,
        offset: i64::try_from(offset).map_err(|_| EntryError::ForeignId(stream_id.to_owned()))?,
        timestamp_ms: 0,
        key: None,
        headers: Vec::new(),
        value: Bytes::new(),
        event_type: None,
    };
    let mut data = None;
    for (name, value) in fields {
        let name =
            std::str::from_utf8(&name).map_err(|_| EntryError::FieldName(stream_id.to_owned()))?;
        match name {
            FIELD_DATA => {
                data.get_or_insert(value);
            }
            FIELD_TYPE => {
                record.event_type.get_or_insert(value);
            }
            FIELD_KEY => {
                record.key.get_or_insert(value);
            }
            _ => {
                if let Some(header) = name.strip_prefix(HEADER_PREFIX) {
                    if !header.is_empty() && record.header(header).is_none() {
                        record.headers.push((header.to_owned(), value));
                    }
                }
            }
        }
    }
    record.value = data.ok_or_else(|| EntryError::NoData(stream_id.to_owned()))?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stream_ids_map_to_offsets_from_zero() {
        assert_eq!(offset_of("0-1"), Ok(0));
        assert_eq!(offset_of("0-42"), Ok(41));
        assert_eq!(stream_id_of(41), "0-42");
        assert_eq!(read_after(41), "0-41");
        for bad in [
            "0-0",
            "1-1",
            "1700000000000-0",
            "0-",
            "0-x",
            "0--1",
            "",
            "0-1-1",
        ] {
            assert!(offset_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_entry_without_data_is_refused_with_its_id() {
        let err = decode(&Arc::from("t"), 0, "0-3", Vec::new()).unwrap_err();
        assert_eq!(err, EntryError::NoData("0-3".into()));
    }

    fn header_name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{0,12}"
    }

    proptest! {
        /// What broker mode writes, it reads back as the same record.
        #[test]
        fn encode_then_decode_round_trips(
            offset in 0u64..u64::from(u32::MAX),
            event_type in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
            headers in proptest::collection::btree_map(header_name(), proptest::collection::vec(any::<u8>(), 0..8), 0..4),
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let headers: Vec<(&str, &[u8])> =
                headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
            let parts = EntryParts {
                id: None,
                event_type: event_type.as_deref(),
                key: key.as_deref(),
                headers: headers.clone(),
                data: &data,
            };
            let topic: Arc<str> = Arc::from("orders");
            let record = decode(&topic, 2, &stream_id_of(offset), encode(&parts)).unwrap();
            prop_assert_eq!(record.offset as u64, offset);
            prop_assert_eq!(record.partition, 2);
            prop_assert_eq!(record.event_type.as_deref(), event_type.as_deref());
            prop_assert_eq!(record.key.as_deref(), key.as_deref());
            prop_assert_eq!(&record.value[..], &data[..]);
            let got: Vec<(&str, &[u8])> =
                record.headers.iter().map(|(n, v)| (n.as_str(), &v[..])).collect();
            prop_assert_eq!(got, headers);
        }

        /// Any fields and any id: an error or a record, never a panic.
        #[test]
        fn decode_never_panics(
            id in ".{0,24}",
            fields in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..12), proptest::collection::vec(any::<u8>(), 0..12)),
                0..8,
            ),
        ) {
            let fields = fields.into_iter().map(|(n, v)| (Bytes::from(n), Bytes::from(v))).collect();
            let _ = decode(&Arc::from("t"), 0, &id, fields);
        }
    }
}
