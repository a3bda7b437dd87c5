//! Known vectors (RFC-style HMAC examples, the Standard Webhooks reference vector), refusals,
//! and a property: any change to the body, id or timestamp breaks the signature.
use super::*;
use proptest::prelude::*;

const FOX: &[u8] = b"The quick brown fox jumps over the lazy dog";

#[test]
fn hub_signatures_of_each_algorithm_verify() {
    let vectors = [
        ("sha256", "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"),
        ("sha384", "d7f4727e2c0b39ae0f1e40cc96f60242d5b7801841cea6fc592c5d3e1ae50700582a96cf35e1e554995fe4e03381c237"),
        ("SHA512", "b42af09057bac1e2d41708e48a902e09b5ff7f12ab428a4fe86653c73dd248fb82f948a549f7b791a5b41915ee4d1ec3935357e4e2317250d0372afa2ebeeb3a"),
    ];
    for (method, hex) in vectors {
        let header = format!("{method}={hex}");
        assert_eq!(
            verify_hub_signature(b"key", Some(&header), FOX),
            Ok(()),
            "{method}"
        );
        assert_eq!(
            verify_hub_signature(b"other", Some(&header), FOX),
            Err(SignatureError::Mismatch)
        );
    }
}

#[test]
fn hub_signature_refusals_say_what_is_wrong() {
    assert_eq!(
        verify_hub_signature(b"k", None, FOX),
        Err(SignatureError::Missing(HUB_HEADER))
    );
    assert!(matches!(
        verify_hub_signature(b"k", Some("sha256"), FOX),
        Err(SignatureError::Malformed { .. })
    ));
    assert!(matches!(
        verify_hub_signature(b"k", Some("sha256=zz"), FOX),
        Err(SignatureError::Malformed { .. })
    ));
    assert_eq!(
        verify_hub_signature(b"k", Some("sha1=00"), FOX),
        Err(SignatureError::Algorithm(HUB_HEADER, "sha1".into()))
    );
}

/// The reference vector of the Standard Webhooks specification.
#[test]
fn standard_webhooks_reference_vector_verifies() {
    let headers = StandardHeaders {
        id: Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
        timestamp: Some("1614265330"),
        signature: Some("v1,bogus v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    };
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = br#"{"test": 2432232314}"#;
    assert_eq!(
        verify_standard(secret, headers, body, 1614265330, 300),
        Ok(())
    );
    assert_eq!(
        verify_standard(secret, headers, body, 1614265330 + 301, 300),
        Err(SignatureError::Stale {
            timestamp: 1614265330,
            now: 1614265631,
            tolerance_s: 300
        })
    );
    assert_eq!(
        verify_standard(secret, headers, b"{}", 1614265330, 300),
        Err(SignatureError::Mismatch)
    );
    let key = standard_key(secret).expect("key");
    assert_eq!(
        sign_standard(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
        Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    );
}

#[test]
fn standard_webhooks_refusals_say_what_is_wrong() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let none = StandardHeaders {
        id: None,
        timestamp: Some("1"),
        signature: Some("v1,AA=="),
    };
    assert_eq!(
        verify_standard(secret, none, b"", 1, 5),
        Err(SignatureError::Missing("webhook-id"))
    );
    let no_v1 = StandardHeaders {
        id: Some("m"),
        timestamp: Some("1"),
        signature: Some("v2,AA=="),
    };
    assert!(matches!(
        verify_standard(secret, no_v1, b"", 1, 5),
        Err(SignatureError::Malformed { .. })
    ));
    assert!(matches!(
        verify_standard("whsec_!!!", no_v1, b"", 1, 5),
        Err(SignatureError::BadSecret(_))
    ));
}

proptest! {
    #[test]
    fn a_signature_verifies_its_own_delivery_and_nothing_else(
        key in proptest::collection::vec(any::<u8>(), 1..64),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        id in "[a-z0-9_]{1,20}",
        ts in 1_000_000_000i64..2_000_000_000,
        flip in any::<usize>(),
    ) {
        let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key));
        let sig = sign_standard(&key, &id, ts, &body).expect("sign");
        fn headers<'a>(id: &'a str, t: &'a str, sig: &'a str) -> StandardHeaders<'a> {
            StandardHeaders { id: Some(id), timestamp: Some(t), signature: Some(sig) }
        }
        let ts_text = ts.to_string();
        prop_assert_eq!(verify_standard(&secret, headers(&id, &ts_text, &sig), &body, ts, 0), Ok(()));
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[flip % body.len()] ^= 1;
            prop_assert_eq!(
                verify_standard(&secret, headers(&id, &ts_text, &sig), &changed, ts, 0),
                Err(SignatureError::Mismatch)
            );
        }
        let other_id = format!("{id}x");
        prop_assert_eq!(
            verify_standard(&secret, headers(&other_id, &ts_text, &sig), &body, ts, 0),
            Err(SignatureError::Mismatch)
        );
        let later = (ts + 1).to_string();
        prop_assert_eq!(
            verify_standard(&secret, headers(&id, &later, &sig), &body, ts + 1, 0),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn hub_headers_of_any_text_never_panic(header in ".{0,80}", body in proptest::collection::vec(any::<u8>(), 0..32)) {
        let _ = verify_hub_signature(b"k", Some(&header), &body);
    }
}

#[test]
fn hub_signatures_we_sign_verify() {
    let header = sign_hub_sha256(b"s3cret", FOX).expect("sign");
    assert!(
        header.starts_with("sha256=") && header.len() == 7 + 64,
        "{header}"
    );
    assert_eq!(verify_hub_signature(b"s3cret", Some(&header), FOX), Ok(()));
    assert_eq!(
        verify_hub_signature(b"other", Some(&header), FOX),
        Err(SignatureError::Mismatch)
    );
}
