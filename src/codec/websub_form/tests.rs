//! Tests for form decoding and hub requests: each error by name, and round trips through an
//! encoder written here (not the decoder's inverse) that varies how it escapes.
use super::*;
use proptest::prelude::*;

fn pairs_of(body: &str) -> Result<Vec<(String, String)>, FormError> {
    form_pairs(body.as_bytes())
}

fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn hub(body: &str) -> Result<HubRequest, HubRequestError> {
    parse_hub_request(body.as_bytes())
}

const OK: &str = "hub.mode=subscribe&hub.topic=https%3A%2F%2Fhub.example%2Ft&hub.callback=https%3A%2F%2Fsub.example%2Fcb";

/// Independent form encoder. `seed` picks, per byte, between the spellings a real client might
/// use: a safe byte literally or as `%XX` / `%xx`, a space as `+`, `%20`, and other bytes as
/// `%XX` or `%xx`.
fn encode(text: &str, seed: &mut u64) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        // splitmix64: cheap, deterministic, and varied even from small seeds.
        *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let choice = (z ^ (z >> 31)) % 4;
        let safe = b.is_ascii_alphanumeric() || b"-._*".contains(&b);
        match (b, choice) {
            (b' ', 0 | 1) => out.push('+'),
            _ if safe && choice < 2 => out.push(char::from(b)),
            (_, 0 | 2) => out.push_str(&format!("%{b:02X}")),
            _ => out.push_str(&format!("%{b:02x}")),
        }
    }
    out
}

fn encode_pairs(pairs: &[(String, String)], mut seed: u64) -> String {
    pairs
        .iter()
        .map(|(n, v)| format!("{}={}", encode(n, &mut seed), encode(v, &mut seed)))
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn decodes_pairs_and_skips_empty_segments() {
    let got = pairs_of("&a=1&&b=x+y%20z&flag&c=%E2%82%AC&=v&").expect("valid");
    let want = owned(&[
        ("a", "1"),
        ("b", "x y z"),
        ("flag", ""),
        ("c", "€"),
        ("", "v"),
    ]);
    assert_eq!(got, want);
    assert_eq!(pairs_of(""), Ok(vec![]));
}

#[test]
fn bad_escapes_name_the_field() {
    for body in [
        "a=1&hub.topic=%zz",
        "hub.topic=%",
        "hub.topic=%4",
        "hub.topic=%4g",
    ] {
        let e = pairs_of(body).expect_err(body);
        assert_eq!(
            e,
            FormError::Escape {
                name: "hub.topic".into()
            },
            "{body}"
        );
        assert!(e.to_string().contains("\"hub.topic\""), "{e}");
    }
}

#[test]
fn invalid_utf8_names_the_field() {
    // After decoding.
    assert_eq!(
        pairs_of("a=1&hub.secret=%ff"),
        Err(FormError::Utf8 {
            name: "hub.secret".into()
        })
    );
    // Before decoding: raw bytes in the value, then in the name.
    assert_eq!(
        form_pairs(b"a=1&hub.secret=x\xff&b=2"),
        Err(FormError::Utf8 {
            name: "hub.secret".into()
        })
    );
    let e = form_pairs(b"a=1&k\xffey=v").expect_err("raw bytes in a name");
    assert_eq!(
        e,
        FormError::Utf8 {
            name: "k\u{fffd}ey".into()
        }
    );
    assert!(e.to_string().contains("not valid UTF-8"), "{e}");
}

#[test]
fn body_size_is_bounded() {
    let body = vec![b'a'; MAX_FORM_BODY + 1];
    let e = form_pairs(&body).expect_err("too big");
    assert_eq!(
        e,
        FormError::TooLarge {
            len: MAX_FORM_BODY + 1,
            max: MAX_FORM_BODY
        }
    );
    assert!(e.to_string().contains("16384"), "{e}");
    assert!(form_pairs(&vec![b'a'; MAX_FORM_BODY]).is_ok());
}

#[test]
fn field_count_is_bounded() {
    let body = |n: usize| vec!["x=1"; n].join("&");
    assert_eq!(
        pairs_of(&body(MAX_FORM_FIELDS)).map(|p| p.len()),
        Ok(MAX_FORM_FIELDS)
    );
    let e = pairs_of(&body(MAX_FORM_FIELDS + 1)).expect_err("too many");
    assert_eq!(
        e,
        FormError::TooManyFields {
            max: MAX_FORM_FIELDS
        }
    );
    assert!(e.to_string().contains("64 fields"), "{e}");
    // Empty segments are not fields.
    assert!(pairs_of(&format!("{}{}", "&".repeat(1000), body(3))).is_ok());
}

#[test]
fn reads_a_subscribe_request() {
    let req = hub(&format!(
        "{OK}&hub.lease_seconds=86400&hub.secret=s3cr%2Bt&ext=1&ext=2&hub.other=x"
    ))
    .expect("valid");
    assert_eq!(
        req,
        HubRequest {
            mode: HubMode::Subscribe,
            topic: "https://hub.example/t".into(),
            callback: "https://sub.example/cb".into(),
            lease_seconds: Some(86_400),
            secret: Some("s3cr+t".into()),
        }
    );
    let req = hub("hub.callback=c&hub.mode=unsubscribe&hub.topic=t").expect("valid");
    assert_eq!(req.mode, HubMode::Unsubscribe);
    assert_eq!(req.mode.as_str(), "unsubscribe");
    assert_eq!((req.lease_seconds, req.secret), (None, None));
}

#[test]
fn debug_hides_the_secret() {
    let req = hub(&format!("{OK}&hub.secret=hunter2")).expect("valid");
    let shown = format!("{req:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

#[test]
fn missing_fields_are_named() {
    let cases = [
        ("hub.topic=t&hub.callback=c", "hub.mode"),
        ("hub.mode=subscribe&hub.callback=c", "hub.topic"),
        ("hub.mode=subscribe&hub.topic=t", "hub.callback"),
    ];
    for (body, field) in cases {
        let e = hub(body).expect_err(body);
        assert_eq!(e, HubRequestError::Missing { field }, "{body}");
        assert_eq!(e.to_string(), format!("{field} is required"));
    }
}

#[test]
fn empty_fields_are_named() {
    let cases = [
        ("hub.mode=&hub.topic=t&hub.callback=c", "hub.mode"),
        ("hub.mode=subscribe&hub.topic&hub.callback=c", "hub.topic"),
        (
            "hub.mode=subscribe&hub.topic=t&hub.callback=",
            "hub.callback",
        ),
        (&format!("{OK}&hub.secret="), "hub.secret"),
        (&format!("{OK}&hub.lease_seconds="), "hub.lease_seconds"),
    ];
    for (body, field) in cases {
        let e = hub(body).expect_err(body);
        assert_eq!(e, HubRequestError::Empty { field }, "{body}");
        assert_eq!(e.to_string(), format!("{field} is empty"));
    }
}

#[test]
fn duplicate_fields_are_named() {
    for field in [
        "hub.mode",
        "hub.topic",
        "hub.callback",
        "hub.lease_seconds",
        "hub.secret",
    ] {
        let body = format!("{OK}&hub.lease_seconds=1&hub.secret=s&{field}=again");
        let e = hub(&body).expect_err(&body);
        assert_eq!(e, HubRequestError::Duplicate { field }, "{body}");
        assert!(e.to_string().contains(field), "{e}");
    }
    // Compared after decoding: `hub%2Emode` is `hub.mode`.
    assert_eq!(
        hub(&format!("{OK}&hub%2Emode=subscribe")),
        Err(HubRequestError::Duplicate { field: "hub.mode" })
    );
}

#[test]
fn unknown_modes_are_quoted() {
    for mode in ["Subscribe", "publish", "subscribe ", "denied"] {
        let body = format!(
            "hub.mode={}&hub.topic=t&hub.callback=c",
            mode.replace(' ', "+")
        );
        let e = hub(&body).expect_err(&body);
        assert_eq!(e, HubRequestError::BadMode { mode: mode.into() });
        assert!(e.to_string().contains(&format!("{mode:?}")), "{e}");
    }
    // A huge mode is shortened in the message.
    let long = "m".repeat(5000);
    let e = hub(&format!("hub.mode={long}&hub.topic=t&hub.callback=c")).expect_err("bad mode");
    assert!(e.to_string().len() < 200, "{e}");
}

#[test]
fn lease_must_be_decimal_u64() {
    for lease in [
        "+5",
        "-1",
        "1.5",
        "1e3",
        "abc",
        " 5",
        "18446744073709551616",
    ] {
        let body = format!("{OK}&hub.lease_seconds={}", encode(lease, &mut 7));
        let e = hub(&body).expect_err(&body);
        assert_eq!(
            e,
            HubRequestError::BadLease {
                value: lease.into()
            },
            "{body}"
        );
        assert!(e.to_string().starts_with("hub.lease_seconds"), "{e}");
    }
    let max = format!("{OK}&hub.lease_seconds=18446744073709551615");
    assert_eq!(hub(&max).map(|r| r.lease_seconds), Ok(Some(u64::MAX)));
    let zero = format!("{OK}&hub.lease_seconds=0");
    assert_eq!(hub(&zero).map(|r| r.lease_seconds), Ok(Some(0)));
}

#[test]
fn secret_must_be_under_200_bytes() {
    let at_limit = format!("{OK}&hub.secret={}", "s".repeat(199));
    assert_eq!(
        hub(&at_limit).map(|r| r.secret.map(|s| s.len())),
        Ok(Some(199))
    );
    let over = format!("{OK}&hub.secret={}", "s".repeat(200));
    let e = hub(&over).expect_err("200 bytes");
    assert_eq!(e, HubRequestError::SecretTooLong { len: 200 });
    assert!(e.to_string().contains("200"), "{e}");
    // Bytes, not characters: 67 euro signs are 201 bytes.
    let euros = format!("{OK}&hub.secret={}", "%E2%82%AC".repeat(67));
    assert_eq!(
        hub(&euros),
        Err(HubRequestError::SecretTooLong { len: 201 })
    );
}

#[test]
fn form_errors_pass_through() {
    let e = hub("hub.mode=%zz").expect_err("bad escape");
    assert_eq!(
        e,
        HubRequestError::Form(FormError::Escape {
            name: "hub.mode".into()
        })
    );
    assert!(e.to_string().starts_with("form field \"hub.mode\""), "{e}");
}

#[test]
fn encoder_spells_things_several_ways() {
    // The round-trip properties are only as good as the encoder's variety.
    let spellings: std::collections::HashSet<String> = (1..200u64)
        .map(|seed| encode("a b", &mut { seed }))
        .collect();
    for want in ["a+b", "%61+b", "a%20b", "%61%20%62", "a%20%62", "a+%62"] {
        assert!(spellings.contains(want), "{want} not in {spellings:?}");
    }
}

fn text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("(?s).{0,16}").expect("valid regex")
}

proptest! {
    #[test]
    fn encoded_pairs_decode_back(
        pairs in proptest::collection::vec((text(), text()), 0..40),
        seed in 1..u64::MAX,
    ) {
        let body = encode_pairs(&pairs, seed);
        prop_assert_eq!(form_pairs(body.as_bytes()), Ok(pairs));
    }

    #[test]
    fn encoded_hub_requests_read_back(
        subscribe in any::<bool>(),
        topic in "(?s).{1,40}",
        callback in "(?s).{1,40}",
        lease_seconds in proptest::option::of(any::<u64>()),
        secret in proptest::option::of("[ -~]{1,199}"),
        extensions in proptest::collection::vec(("x-[a-z]{1,8}", text()), 0..5),
        order_seed in any::<u64>(),
        seed in 1..u64::MAX,
    ) {
        let mode = if subscribe { HubMode::Subscribe } else { HubMode::Unsubscribe };
        let mut fields = vec![
            ("hub.mode".to_owned(), mode.as_str().to_owned()),
            ("hub.topic".to_owned(), topic.clone()),
            ("hub.callback".to_owned(), callback.clone()),
        ];
        if let Some(lease) = lease_seconds {
            fields.push(("hub.lease_seconds".to_owned(), lease.to_string()));
        }
        if let Some(secret) = &secret {
            fields.push(("hub.secret".to_owned(), secret.clone()));
        }
        fields.extend(extensions);
        // Field order is not part of the request: rotate by a random amount.
        let len = fields.len();
        fields.rotate_left(usize::try_from(order_seed % len as u64).unwrap_or(0));
        let body = encode_pairs(&fields, seed);
        let want = HubRequest { mode, topic, callback, lease_seconds, secret };
        prop_assert_eq!(parse_hub_request(body.as_bytes()), Ok(want));
    }

    #[test]
    fn arbitrary_bytes_answer_without_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = form_pairs(&body);
        let _ = parse_hub_request(&body);
    }
}
