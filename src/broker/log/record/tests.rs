//! Unit and property tests of the record format: round trips, and every way bytes can fail
//! to be a record.
use super::*;
use crate::broker::log::testing::{arb_record_at, bare, bytes_of, full, reseal};
use proptest::prelude::*;

fn decoded(buf: &[u8]) -> (Record, usize) {
    match decode(buf) {
        Decoded::Record { record, len } => (record.to_record(&Bytes::copy_from_slice(buf)), len),
        other => panic!("not a record: {other:?}"),
    }
}

fn corruption(buf: &[u8]) -> Corruption {
    match decode(buf) {
        Decoded::Corrupt(why) => why,
        other => panic!("not corrupt: {other:?}"),
    }
}

#[test]
fn round_trip_with_every_field_and_with_none() {
    for record in [full(7), bare(0, ""), bare(u64::MAX, "x")] {
        let buf = bytes_of(&record);
        assert_eq!(buf.len(), encoded_len(&record.borrowed()));
        assert_eq!(decoded(&buf), (record, buf.len()));
    }
    assert_eq!(bytes_of(&bare(0, "")).len(), HEADER_LEN + MIN_BODY_LEN);
}

#[test]
fn absent_and_empty_fields_stay_distinct() {
    let mut empty = bare(1, "d");
    empty.event_type = Some(Arc::from(""));
    empty.idempotency_key = Some("".into());
    empty.key = Some(Bytes::new());
    empty.headers = vec![(String::new(), Bytes::new())];
    let (back, _) = decoded(&bytes_of(&empty));
    assert_eq!(back, empty);
    assert_ne!(back, bare(1, "d"));
}

#[test]
fn decode_reads_one_record_and_ignores_what_follows() {
    let mut buf = bytes_of(&full(3));
    let len = buf.len();
    buf.extend_from_slice(b"whatever comes next");
    assert_eq!(decoded(&buf), (full(3), len));
}

#[test]
fn from_publish_borrows_the_item() {
    let item = PublishItem {
        event_type: Some(Arc::from("t")),
        idempotency_key: Some("k".into()),
        data: Bytes::from_static(b"hello"),
        key: Some(Bytes::from_static(b"key")),
        headers: vec![("h".to_owned(), Bytes::from_static(b"v"))],
    };
    let rec = RecordRef::from_publish(9, 1234, &item);
    assert_eq!(rec.data.as_ptr(), item.data.as_ptr(), "no copy");
    let mut out = Vec::new();
    encode(&rec, &mut out).expect("encode");
    let (back, _) = decoded(&out);
    assert_eq!((back.offset, back.timestamp_ms), (9, 1234));
    assert_eq!(back.event_type, item.event_type);
    assert_eq!(back.idempotency_key, item.idempotency_key);
    assert_eq!(
        (back.key, back.headers, back.data),
        (item.key, item.headers, item.data)
    );
}

#[test]
fn to_record_shares_the_backing_buffer() {
    let backing = Bytes::from(bytes_of(&full(1)));
    let Decoded::Record { record, .. } = decode(&backing) else {
        panic!("record");
    };
    let owned = record.to_record(&backing);
    let inside = |b: &Bytes| {
        let start = backing.as_ptr() as usize;
        (start..start + backing.len()).contains(&(b.as_ptr() as usize))
    };
    assert!(inside(&owned.data));
    assert!(inside(owned.key.as_ref().expect("key")));
    assert!(owned.headers.iter().all(|(_, v)| inside(v)));
    // Another buffer: same record, copied.
    let other = record.to_record(&Bytes::from_static(b"unrelated"));
    assert_eq!(other, owned);
    assert!(!inside(&other.data));
}

#[test]
fn zero_fill_is_never_a_record() {
    assert_eq!(corruption(&[0; 4096]), Corruption::ZeroLength);
    assert_eq!(corruption(&[0; HEADER_LEN]), Corruption::ZeroLength);
    for len in 0..HEADER_LEN {
        assert!(matches!(
            decode(&vec![0; len]),
            Decoded::Incomplete { needed: HEADER_LEN }
        ));
    }
}

#[test]
fn truncated_at_every_byte_is_incomplete() {
    let buf = bytes_of(&full(5));
    for cut in 0..buf.len() {
        let needed = if cut < HEADER_LEN {
            HEADER_LEN
        } else {
            buf.len()
        };
        match decode(&buf[..cut]) {
            Decoded::Incomplete { needed: n } => assert_eq!(n, needed, "cut {cut}"),
            other => panic!("cut {cut}: {other:?}"),
        }
    }
}

#[test]
fn every_single_byte_change_is_detected() {
    let buf = bytes_of(&full(5));
    for at in 0..buf.len() {
        for flip in [0x01, 0x80, 0xff, 0x5a] {
            let mut bad = buf.clone();
            bad[at] ^= flip;
            // Followed by more bytes, so a grown length still finds a body to check.
            bad.extend_from_slice(&buf);
            assert!(
                !matches!(decode(&bad), Decoded::Record { .. }),
                "byte {at} ^ {flip:#x} went unnoticed"
            );
        }
    }
}

#[test]
fn bad_crc() {
    let mut buf = bytes_of(&full(5));
    buf[4] ^= 1;
    assert!(matches!(corruption(&buf), Corruption::BadCrc { .. }));
    let mut buf = bytes_of(&full(5));
    let last = buf.len() - 1;
    buf[last] ^= 0x20;
    assert!(matches!(corruption(&buf), Corruption::BadCrc { .. }));
}

/// `buf` with `body_len` set to `len` (CRC not fixed).
fn with_body_len(mut buf: Vec<u8>, len: u32) -> Vec<u8> {
    buf[..4].copy_from_slice(&len.to_le_bytes());
    buf
}

#[test]
fn impossible_lengths_are_corrupt_before_anything_is_read() {
    let buf = bytes_of(&full(5));
    // Checked with only the header present: no read or allocation sized by the length.
    let head = |len| with_body_len(buf[..HEADER_LEN].to_vec(), len);
    assert_eq!(
        corruption(&head(u32::MAX)),
        Corruption::TooLarge {
            len: HEADER_LEN + u32::MAX as usize
        }
    );
    let over = (MAX_RECORD_LEN - HEADER_LEN + 1) as u32;
    assert!(matches!(
        corruption(&head(over)),
        Corruption::TooLarge { .. }
    ));
    let max = (MAX_RECORD_LEN - HEADER_LEN) as u32;
    assert!(matches!(
        decode(&head(max)),
        Decoded::Incomplete {
            needed: MAX_RECORD_LEN
        }
    ));
    for short in 1..MIN_BODY_LEN as u32 {
        assert_eq!(
            corruption(&head(short)),
            Corruption::TooShort {
                len: short as usize
            }
        );
    }
}

/// Offsets within `bytes_of(&full(_))`'s body, from the layout.
const VERSION_AT: usize = HEADER_LEN + 16;
const FLAGS_AT: usize = VERSION_AT + 1;
const TYPE_AT: usize = FLAGS_AT + 1; // u16 length, then the text

fn resealed(mut buf: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit(&mut buf);
    reseal(&mut buf);
    buf
}

#[test]
fn unknown_version_or_flags_with_a_good_crc() {
    let buf = bytes_of(&full(5));
    let v2 = resealed(buf.clone(), |b| b[VERSION_AT] = 2);
    assert_eq!(corruption(&v2), Corruption::UnsupportedVersion(2));
    let flags = resealed(buf, |b| b[FLAGS_AT] |= 0x08);
    assert_eq!(corruption(&flags), Corruption::UnknownFlags(0x0f));
}

#[test]
fn invalid_utf8_in_each_text_field() {
    let find = |buf: &[u8], needle: &[u8]| {
        buf.windows(needle.len())
            .position(|w| w == needle)
            .expect("present")
    };
    let buf = bytes_of(&full(5));
    for (needle, field) in [
        (&b"order"[..], "event type"),
        (b"idem", "idempotency key"),
        (b"trace", "header name"),
        (b"total", "data"),
    ] {
        let at = find(&buf, needle);
        let bad = resealed(buf.clone(), |b| b[at] = 0xff);
        assert_eq!(corruption(&bad), Corruption::NotUtf8 { field }, "{field}");
    }
    // Bytes fields take any bytes.
    let key_at = find(&buf, b"customer");
    let ok = resealed(buf, |b| b[key_at] = 0xff);
    assert!(matches!(decode(&ok), Decoded::Record { .. }));
}

#[test]
fn a_field_length_past_the_body_or_bytes_left_over() {
    let buf = bytes_of(&bare(1, "abc"));
    let data_len_at = buf.len() - 3 - 4;
    let long = resealed(buf.clone(), |b| b[data_len_at] = 4);
    assert_eq!(corruption(&long), Corruption::Overrun { field: "data" });
    let short = resealed(buf.clone(), |b| b[data_len_at] = 2);
    assert_eq!(corruption(&short), Corruption::TrailingBytes { extra: 1 });
    // A flag promising an event type the body does not hold.
    let typed = resealed(buf.clone(), |b| b[FLAGS_AT] = 1);
    assert!(matches!(corruption(&typed), Corruption::Overrun { .. }));
    // An event type length running past the body.
    let full_buf = bytes_of(&full(1));
    let huge_type = resealed(full_buf, |b| {
        b[TYPE_AT..TYPE_AT + 2].copy_from_slice(&[0xff; 2])
    });
    assert_eq!(
        corruption(&huge_type),
        Corruption::Overrun {
            field: "event type"
        }
    );
    // One more byte in the body, counted in the length: a good CRC, a byte too many.
    let mut grown = buf.clone();
    grown.push(0);
    let grown = resealed(
        with_body_len(grown, (buf.len() - HEADER_LEN + 1) as u32),
        |_| (),
    );
    assert_eq!(corruption(&grown), Corruption::TrailingBytes { extra: 1 });
}

#[test]
fn encode_refuses_what_it_could_not_read_back_and_appends_nothing() {
    let prefix = b"earlier records".to_vec();
    let check = |record: RecordRef<'_>, want: EncodeError| {
        let mut out = prefix.clone();
        assert_eq!(encode(&record, &mut out), Err(want));
        assert_eq!(out, prefix);
    };
    let base = bare(1, "d");
    let long_text = "t".repeat(65_536);
    check(
        RecordRef {
            event_type: Some(&long_text),
            ..base.borrowed()
        },
        EncodeError::FieldTooLong {
            field: "event type",
            len: 65_536,
            max: 65_535,
        },
    );
    let headers = vec![(String::new(), Bytes::new()); 65_536];
    check(
        RecordRef {
            headers: &headers,
            ..base.borrowed()
        },
        EncodeError::FieldTooLong {
            field: "header count",
            len: 65_536,
            max: 65_535,
        },
    );
    check(
        RecordRef {
            data: b"\xff",
            ..base.borrowed()
        },
        EncodeError::DataNotUtf8,
    );
    let big = vec![b'a'; MAX_RECORD_LEN - HEADER_LEN - MIN_BODY_LEN + 1];
    check(
        RecordRef {
            data: &big,
            ..base.borrowed()
        },
        EncodeError::TooLarge {
            len: MAX_RECORD_LEN + 1,
        },
    );
    // One byte less is the largest record there is, and it reads back.
    let mut out = prefix.clone();
    let max = RecordRef {
        data: &big[1..],
        ..base.borrowed()
    };
    assert_eq!(encode(&max, &mut out), Ok(MAX_RECORD_LEN));
    assert!(matches!(
        decode(&out[prefix.len()..]),
        Decoded::Record {
            len: MAX_RECORD_LEN,
            ..
        }
    ));
}

proptest! {
    #[test]
    fn any_record_round_trips(record in any::<u64>().prop_flat_map(arb_record_at)) {
        let mut out = vec![0xAA; 3]; // appends after what is there
        let len = encode(&record.borrowed(), &mut out).expect("encodable");
        prop_assert_eq!(len, encoded_len(&record.borrowed()));
        prop_assert_eq!(out.len(), 3 + len);
        let backing = Bytes::from(out).slice(3..);
        match decode(&backing) {
            Decoded::Record { record: view, len: n } => {
                prop_assert_eq!(n, len);
                prop_assert_eq!(view.headers.len(), record.headers.len());
                prop_assert_eq!(view.to_record(&backing), record);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
