//! Fuzz the Redis stream entry decoder (broker mode reads entries any client could have
//! written): an arbitrary id and fields never panic; a decoded record's offset maps back to its
//! id, and what it decoded encodes again to an entry that decodes to the same record.
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluicegate::internals::broker::redis::{decode, encode, stream_id_of, EntryParts};

fuzz_target!(|data: &[u8]| {
    // First line: the stream id; then NUL-separated field, value, field, value...
    let (id, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(id) = std::str::from_utf8(id) else {
        return;
    };
    let parts: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
    let fields: Vec<(Bytes, Bytes)> = parts
        .chunks(2)
        .map(|c| {
            let value = c.get(1).copied().unwrap_or_default();
            (Bytes::copy_from_slice(c[0]), Bytes::copy_from_slice(value))
        })
        .collect();
    let topic: Arc<str> = Arc::from("t");
    let Ok(record) = decode(&topic, 0, id, fields) else {
        return;
    };
    let offset = u64::try_from(record.offset).expect("offsets are not negative");
    assert_eq!(stream_id_of(offset), id);
    let headers: Vec<(&str, &[u8])> = record
        .headers
        .iter()
        .filter(|(n, _)| n.bytes().all(|b| !b.is_ascii_uppercase()))
        .map(|(n, v)| (n.as_str(), &v[..]))
        .collect();
    let again = EntryParts {
        id: None,
        event_type: record.event_type.as_deref(),
        key: record.key.as_deref(),
        headers: headers.clone(),
        data: &record.value,
    };
    let back = decode(&topic, 0, id, encode(&again)).expect("an encoded entry decodes");
    assert_eq!(back.value, record.value);
    assert_eq!(back.key, record.key);
    assert_eq!(back.event_type, record.event_type);
    let got: Vec<(&str, &[u8])> = back.headers.iter().map(|(n, v)| (n.as_str(), &v[..])).collect();
    assert_eq!(got, headers);
});
