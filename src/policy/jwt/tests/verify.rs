//! `KeySet::verify`: every accept and refuse case.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

use super::*;
use crate::policy::jwt::{JwtError, VerifiedToken};

fn all_kinds_set() -> KeySet {
    KeySet::load(&[
        secret_cfg("hs", SECRET, &["HS256", "HS384", "HS512"]),
        pem_file_cfg("es", "es256.pub", &["ES256"]),
        pem_file_cfg("rs", "rs256.pub", &["RS256"]),
        pem_file_cfg("ed", "ed25519.pub", &["EdDSA"]),
    ])
    .unwrap()
}

#[test]
fn accepts_each_algorithm_and_reads_the_grant() {
    let set = all_kinds_set();
    let cases = [
        (Algorithm::HS256, "hs", hs_key()),
        (Algorithm::HS384, "hs", hs_key()),
        (Algorithm::HS512, "hs", hs_key()),
        (Algorithm::ES256, "es", es_key()),
        (Algorithm::RS256, "rs", rs_key()),
        (Algorithm::EdDSA, "ed", ed_key()),
    ];
    for (alg, kid, key) in cases {
        let token = mint(alg, Some(kid), &claims(), &key);
        let got = set
            .verify(&token, &settings(), NOW)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(
            got,
            VerifiedToken {
                sub: Some("alice".into()),
                exp: Some(NOW + 600),
                publish: vec!["orders.*".into()],
                subscribe: vec!["orders.**".into()],
            }
        );
    }
}

#[test]
fn kid_picks_the_key_among_several() {
    let set = KeySet::load(&[
        secret_cfg("a", SECRET, &["HS256"]),
        secret_cfg("b", "another-secret-also-32-bytes-long", &["HS256"]),
        pem_file_cfg("es", "es256.pub", &["ES256"]),
    ])
    .unwrap();
    let b_key = EncodingKey::from_secret(b"another-secret-also-32-bytes-long").unwrap();
    assert!(set
        .verify(
            &mint(Algorithm::HS256, Some("a"), &claims(), &hs_key()),
            &settings(),
            NOW
        )
        .is_ok());
    assert!(set
        .verify(
            &mint(Algorithm::HS256, Some("b"), &claims(), &b_key),
            &settings(),
            NOW
        )
        .is_ok());
    assert!(set
        .verify(
            &mint(Algorithm::ES256, Some("es"), &claims(), &es_key()),
            &settings(),
            NOW
        )
        .is_ok());
    // b's secret under a's kid: the kid decides the key, so the signature fails.
    let crossed = mint(Algorithm::HS256, Some("a"), &claims(), &b_key);
    assert_eq!(
        set.verify(&crossed, &settings(), NOW),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn unknown_kid_and_missing_kid_without_a_kidless_key_are_refused() {
    let set = all_kinds_set();
    let unknown = mint(Algorithm::HS256, Some("nope"), &claims(), &hs_key());
    assert_eq!(
        set.verify(&unknown, &settings(), NOW),
        Err(JwtError::UnknownKid)
    );
    let no_kid = mint(Algorithm::HS256, None, &claims(), &hs_key());
    assert_eq!(
        set.verify(&no_kid, &settings(), NOW),
        Err(JwtError::UnknownKid)
    );
}

#[test]
fn token_without_kid_uses_the_kidless_key_and_a_kid_never_falls_back_to_it() {
    let set = hs_set();
    assert!(set
        .verify(
            &mint(Algorithm::HS256, None, &claims(), &hs_key()),
            &settings(),
            NOW
        )
        .is_ok());
    let with_kid = mint(Algorithm::HS256, Some("x"), &claims(), &hs_key());
    assert_eq!(
        set.verify(&with_kid, &settings(), NOW),
        Err(JwtError::UnknownKid)
    );
}

#[test]
fn alg_none_is_refused() {
    let set = hs_set();
    let payload = json!({"sub": "mallory", "exp": NOW + 600}).to_string();
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None"}"#,
        r#"{"alg":"NONE"}"#,
    ] {
        let token = raw_token(header, &payload, "");
        assert_eq!(
            set.verify(&token, &settings(), NOW),
            Err(JwtError::AlgorithmNotAllowed),
            "{header}"
        );
    }
}

#[test]
fn hs256_signed_with_the_rsa_public_key_as_secret_is_refused() {
    let set = KeySet::load(&[pem_file_cfg("rs", "rs256.pub", &["RS256"])]).unwrap();
    let pem = key_text("rs256.pub");
    // The classic confusion attack, with both forms an attacker might guess the verifier uses.
    for secret in [pem.as_bytes(), pem.trim_end().as_bytes()] {
        let forged = mint(
            Algorithm::HS256,
            Some("rs"),
            &claims(),
            &EncodingKey::from_secret(secret).unwrap(),
        );
        assert_eq!(
            set.verify(&forged, &settings(), NOW),
            Err(JwtError::AlgorithmNotAllowed)
        );
    }
}

#[test]
fn algorithm_outside_the_key_allowlist_is_refused() {
    let set = KeySet::load(&[
        secret_cfg("hs", SECRET, &["HS256"]),
        pem_file_cfg("es", "es256.pub", &["ES256"]),
    ])
    .unwrap();
    let hs384 = mint(Algorithm::HS384, Some("hs"), &claims(), &hs_key());
    assert_eq!(
        set.verify(&hs384, &settings(), NOW),
        Err(JwtError::AlgorithmNotAllowed)
    );
    // An algorithm jsonwebtoken knows but the allowlist never admits.
    let es384 = raw_token(
        r#"{"alg":"ES384","kid":"es"}"#,
        &claims().to_string(),
        "AAAA",
    );
    assert_eq!(
        set.verify(&es384, &settings(), NOW),
        Err(JwtError::AlgorithmNotAllowed)
    );
}

#[test]
fn bad_signatures_are_refused() {
    let set = all_kinds_set();
    let wrong_secret = EncodingKey::from_secret(b"not-the-secret-not-the-secret!!!").unwrap();
    let token = mint(Algorithm::HS256, Some("hs"), &claims(), &wrong_secret);
    assert_eq!(
        set.verify(&token, &settings(), NOW),
        Err(JwtError::BadSignature)
    );
    // A valid ES256 token whose payload is swapped for another.
    let good = mint(Algorithm::ES256, Some("es"), &claims(), &es_key());
    let parts: Vec<&str> = good.split('.').collect();
    let other = b64url(json!({"sub": "mallory"}).to_string().as_bytes());
    let tampered = format!("{}.{other}.{}", parts[0], parts[2]);
    assert_eq!(
        set.verify(&tampered, &settings(), NOW),
        Err(JwtError::BadSignature)
    );
    // A cut-short signature.
    let truncated = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..20]);
    assert_eq!(
        set.verify(&truncated, &settings(), NOW),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn expiry_allows_the_leeway_and_not_a_second_more() {
    let set = hs_set();
    let token = mint(Algorithm::HS256, None, &json!({"exp": NOW}), &hs_key());
    let s = settings();
    assert!(set.verify(&token, &s, NOW).is_ok());
    assert!(set.verify(&token, &s, NOW + 30).is_ok());
    assert_eq!(set.verify(&token, &s, NOW + 31), Err(JwtError::Expired));
    let strict = JwtSettings {
        leeway_s: 0,
        ..settings()
    };
    assert_eq!(set.verify(&token, &strict, NOW + 1), Err(JwtError::Expired));
}

#[test]
fn not_before_allows_the_leeway_and_not_a_second_more() {
    let set = hs_set();
    let token = mint(Algorithm::HS256, None, &json!({"nbf": NOW}), &hs_key());
    let s = settings();
    assert!(set.verify(&token, &s, NOW).is_ok());
    assert!(set.verify(&token, &s, NOW - 30).is_ok());
    assert_eq!(set.verify(&token, &s, NOW - 31), Err(JwtError::NotYetValid));
}

#[test]
fn exp_is_optional_and_fractional_dates_round_strictly() {
    let set = hs_set();
    let token = mint(Algorithm::HS256, None, &json!({"sub": "svc"}), &hs_key());
    let got = set.verify(&token, &settings(), u64::MAX).unwrap();
    assert_eq!(got.exp, None);
    // exp 100.9 counts as 100; nbf 100.1 as 101.
    let s = JwtSettings {
        leeway_s: 0,
        ..settings()
    };
    let exp = mint(Algorithm::HS256, None, &json!({"exp": 100.9}), &hs_key());
    assert_eq!(set.verify(&exp, &s, 100).unwrap().exp, Some(100));
    assert_eq!(set.verify(&exp, &s, 101), Err(JwtError::Expired));
    let nbf = mint(Algorithm::HS256, None, &json!({"nbf": 100.1}), &hs_key());
    assert_eq!(set.verify(&nbf, &s, 100), Err(JwtError::NotYetValid));
    assert!(set.verify(&nbf, &s, 101).is_ok());
}

#[test]
fn registered_claims_of_the_wrong_type_are_malformed() {
    let set = hs_set();
    for claims in [
        json!({"exp": "tomorrow"}),
        json!({"exp": -1}),
        json!({"nbf": [1]}),
        json!({"sub": 7}),
    ] {
        let token = mint(Algorithm::HS256, None, &claims, &hs_key());
        assert_eq!(
            set.verify(&token, &settings(), NOW),
            Err(JwtError::Malformed),
            "{claims}"
        );
    }
}

#[test]
fn issuer_is_checked_only_when_configured() {
    let set = hs_set();
    let s = JwtSettings {
        issuer: Some("https://idp.example".into()),
        ..settings()
    };
    let good = mint(
        Algorithm::HS256,
        None,
        &json!({"iss": "https://idp.example"}),
        &hs_key(),
    );
    let wrong = mint(
        Algorithm::HS256,
        None,
        &json!({"iss": "https://evil.example"}),
        &hs_key(),
    );
    let missing = mint(Algorithm::HS256, None, &json!({}), &hs_key());
    assert!(set.verify(&good, &s, NOW).is_ok());
    assert_eq!(set.verify(&wrong, &s, NOW), Err(JwtError::WrongIssuer));
    assert_eq!(set.verify(&missing, &s, NOW), Err(JwtError::WrongIssuer));
    assert!(set.verify(&wrong, &settings(), NOW).is_ok());
}

#[test]
fn audience_may_be_a_string_or_an_array() {
    let set = hs_set();
    let s = JwtSettings {
        audience: Some("gateway".into()),
        ..settings()
    };
    let accepted = [
        json!({"aud": "gateway"}),
        json!({"aud": ["other", "gateway"]}),
    ];
    for claims in accepted {
        let token = mint(Algorithm::HS256, None, &claims, &hs_key());
        assert!(set.verify(&token, &s, NOW).is_ok(), "{claims}");
    }
    let refused = [
        json!({"aud": "other"}),
        json!({"aud": ["a", "b"]}),
        json!({"aud": []}),
        json!({}),
        json!({"aud": 5}),
    ];
    for claims in refused {
        let token = mint(Algorithm::HS256, None, &claims, &hs_key());
        assert_eq!(
            set.verify(&token, &s, NOW),
            Err(JwtError::WrongAudience),
            "{claims}"
        );
    }
    // Not configured: any aud passes (jsonwebtoken's default would refuse every aud).
    let token = mint(
        Algorithm::HS256,
        None,
        &json!({"aud": "whoever"}),
        &hs_key(),
    );
    assert!(set.verify(&token, &settings(), NOW).is_ok());
}

#[test]
fn malformed_tokens_are_refused() {
    let set = hs_set();
    let good = mint(Algorithm::HS256, None, &claims(), &hs_key());
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        String::new(),
        "abc".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.extra"),
        format!("{}!.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", b64url(b"not json"), parts[1], parts[2]),
        format!("{}.{}.{}", b64url(br#"{"typ":"JWT"}"#), parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], parts[1], "***"),
    ];
    for token in cases {
        assert_eq!(
            set.verify(&token, &settings(), NOW),
            Err(JwtError::Malformed),
            "{token:?}"
        );
    }
    // A payload that is not JSON, correctly signed.
    let not_json = {
        let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = b64url(b"[not json");
        let message = format!("{header}.{payload}");
        let sig =
            jsonwebtoken::crypto::sign(message.as_bytes(), &hs_key(), Algorithm::HS256).unwrap();
        format!("{message}.{sig}")
    };
    assert_eq!(
        set.verify(&not_json, &settings(), NOW),
        Err(JwtError::Malformed)
    );
}

#[test]
fn claim_shapes() {
    let set = hs_set();
    let verify = |claims: serde_json::Value| {
        set.verify(
            &mint(Algorithm::HS256, None, &claims, &hs_key()),
            &settings(),
            NOW,
        )
    };
    let absent = verify(json!({})).unwrap();
    assert!(absent.publish.is_empty() && absent.subscribe.is_empty());
    let null = verify(json!({"sluicegate": null})).unwrap();
    assert!(null.publish.is_empty() && null.subscribe.is_empty());
    let publish_only = verify(json!({"sluicegate": {"publish": ["a", "b.*"]}})).unwrap();
    assert_eq!(publish_only.publish, ["a", "b.*"]);
    assert!(publish_only.subscribe.is_empty());
    let bad = [
        json!({"sluicegate": "orders"}),
        json!({"sluicegate": ["orders"]}),
        json!({"sluicegate": {"publish": "orders"}}),
        json!({"sluicegate": {"publish": [1]}}),
        json!({"sluicegate": {"subscribe": null}}),
        json!({"sluicegate": {"publsh": ["orders"]}}),
    ];
    for claims in bad {
        assert_eq!(verify(claims.clone()), Err(JwtError::BadClaim), "{claims}");
    }
}

#[test]
fn the_claim_name_comes_from_the_settings() {
    let set = hs_set();
    let s = JwtSettings {
        claim: "https://example.com/acl".into(),
        ..settings()
    };
    let claims = json!({"https://example.com/acl": {"subscribe": ["x"]}, "sluicegate": 5});
    let got = set
        .verify(&mint(Algorithm::HS256, None, &claims, &hs_key()), &s, NOW)
        .unwrap();
    assert_eq!(got.subscribe, ["x"]);
}

#[test]
fn descriptions_are_the_fixed_texts() {
    let all = [
        (JwtError::Expired, "token expired"),
        (JwtError::NotYetValid, "token not yet valid"),
        (JwtError::UnknownKid, "unknown key id"),
        (
            JwtError::AlgorithmNotAllowed,
            "algorithm not allowed for this key",
        ),
        (JwtError::BadSignature, "bad signature"),
        (JwtError::WrongIssuer, "wrong issuer"),
        (JwtError::WrongAudience, "wrong audience"),
        (JwtError::Malformed, "malformed token"),
        (JwtError::BadClaim, "bad sluicegate claim"),
    ];
    for (err, text) in all {
        assert_eq!(err.description(), text);
        assert_eq!(err.to_string(), text);
    }
}
