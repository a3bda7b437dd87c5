//! `KeySet::load`: what loads, and that every refusal names the entry, the file and the fault.

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::*;

/// The load error for `configs`, which must fail.
fn load_err(configs: &[JwtKeyConfig]) -> String {
    match KeySet::load(configs) {
        Ok(set) => panic!("loaded: {set:?}"),
        Err(e) => e,
    }
}

fn assert_mentions(err: &str, parts: &[&str]) {
    for part in parts {
        assert!(err.contains(part), "{err:?} does not mention {part:?}");
    }
}

/// A JWKS file with `keys` in a fresh temp dir (removed when the guard drops).
fn jwks_file(dir: &str, keys: serde_json::Value) -> (TempDir, String) {
    let dir = TempDir::new(dir);
    let path = dir.file("jwks.json");
    std::fs::write(&path, json!({ "keys": keys }).to_string()).unwrap();
    (dir, path)
}

fn committed_jwks() -> Vec<serde_json::Value> {
    let text = key_text("jwks.json");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["keys"].as_array().unwrap().clone()
}

#[test]
fn loads_every_source_kind() {
    let dir = TempDir::new("sources");
    let secret_file = dir.file("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let set = KeySet::load(&[
        secret_cfg("inline", SECRET, &["HS256"]),
        JwtKeyConfig {
            kid: "file".into(),
            algorithms: algs(&["HS256"]),
            secret_file,
            ..Default::default()
        },
        JwtKeyConfig {
            kid: "pem".into(),
            algorithms: algs(&["RS256"]),
            public_key_pem: key_text("rs256.pub"),
            ..Default::default()
        },
        pem_file_cfg("", "es256.pub", &["ES256"]),
        jwks_cfg(&key_path("jwks.json"), &["ES256", "EdDSA"]),
    ])
    .unwrap();
    assert_eq!(set.kids(), ["", "ed-1", "es-1", "file", "inline", "pem"]);
    // The secret file's trailing newline is not part of the secret.
    let token = mint(Algorithm::HS256, Some("file"), &claims(), &hs_key());
    assert!(set.verify(&token, &settings(), NOW).is_ok());
}

#[test]
fn jwks_keys_are_picked_by_their_kid() {
    let set = KeySet::load(&[jwks_cfg(&key_path("jwks.json"), &["ES256", "EdDSA"])]).unwrap();
    let es = mint(Algorithm::ES256, Some("es-1"), &claims(), &es_key());
    let ed = mint(Algorithm::EdDSA, Some("ed-1"), &claims(), &ed_key());
    assert!(set.verify(&es, &settings(), NOW).is_ok());
    assert!(set.verify(&ed, &settings(), NOW).is_ok());
    // Each JWK keeps to its own alg: the ES key does not take an EdDSA token.
    let crossed = mint(Algorithm::EdDSA, Some("es-1"), &claims(), &ed_key());
    assert_eq!(
        set.verify(&crossed, &settings(), NOW),
        Err(crate::policy::jwt::JwtError::AlgorithmNotAllowed)
    );
}

#[test]
fn jwks_key_without_alg_takes_the_entry_algorithms_of_its_family() {
    let mut keys = committed_jwks();
    for key in &mut keys {
        key.as_object_mut().unwrap().remove("alg");
    }
    let (_dir, path) = jwks_file("no-alg", json!(keys));
    let set = KeySet::load(&[jwks_cfg(&path, &["ES256", "EdDSA", "HS256"])]).unwrap();
    assert!(set
        .verify(
            &mint(Algorithm::EdDSA, Some("ed-1"), &claims(), &ed_key()),
            &settings(),
            NOW
        )
        .is_ok());
    assert!(set
        .verify(
            &mint(Algorithm::ES256, Some("es-1"), &claims(), &es_key()),
            &settings(),
            NOW
        )
        .is_ok());
}

#[test]
fn refuses_file_problems() {
    let missing = load_err(&[pem_file_cfg("k1", "nope.pub", &["RS256"])]);
    assert_mentions(
        &missing,
        &["jwt_keys[0]", "kid \"k1\"", "nope.pub", "cannot read"],
    );
    let not_pem = load_err(&[
        secret_cfg("ok", SECRET, &["HS256"]),
        JwtKeyConfig {
            pem_file: key_path("jwks.json"),
            ..pem_file_cfg("k2", "", &["ES256"])
        },
    ]);
    assert_mentions(
        &not_pem,
        &["jwt_keys[1]", "kid \"k2\"", "jwks.json", "not PEM"],
    );
    let private = load_err(&[pem_file_cfg("k3", "es256.key", &["ES256"])]);
    assert_mentions(&private, &["jwt_keys[0]", "es256.key", "private key"]);
}

#[test]
fn refuses_bad_algorithm_lists() {
    let unknown = load_err(&[secret_cfg("k", SECRET, &["HS256", "none"])]);
    assert_mentions(
        &unknown,
        &["jwt_keys[0]", "kid \"k\"", "unknown algorithm \"none\""],
    );
    let outside = load_err(&[pem_file_cfg("k", "rs256.pub", &["PS256"])]);
    assert_mentions(&outside, &["unknown algorithm \"PS256\""]);
    let empty = load_err(&[secret_cfg("k", SECRET, &[])]);
    assert_mentions(&empty, &["algorithms is empty"]);
}

#[test]
fn refuses_algorithms_that_do_not_fit_the_key() {
    let cases = [
        (
            pem_file_cfg("k", "rs256.pub", &["RS256", "HS256"]),
            "HS256 needs an HMAC secret",
        ),
        (
            pem_file_cfg("k", "es256.pub", &["HS512"]),
            "HS512 needs an HMAC secret",
        ),
        (
            secret_cfg("k", SECRET, &["RS256"]),
            "RS256 needs a public key",
        ),
        (
            pem_file_cfg("k", "rs256.pub", &["ES256"]),
            "ES256 does not fit an RSA public key",
        ),
        (
            pem_file_cfg("k", "es256.pub", &["EdDSA"]),
            "EdDSA does not fit an EC public key",
        ),
        (
            pem_file_cfg("k", "ed25519.pub", &["RS256"]),
            "RS256 does not fit an Ed25519",
        ),
    ];
    for (cfg, what) in cases {
        let err = load_err(&[cfg]);
        assert_mentions(&err, &["jwt_keys[0]", "kid \"k\"", what]);
    }
}

#[test]
fn refuses_duplicate_kids_and_two_kidless_keys() {
    let dup = load_err(&[
        secret_cfg("a", SECRET, &["HS256"]),
        pem_file_cfg("a", "es256.pub", &["ES256"]),
    ]);
    assert_mentions(
        &dup,
        &["jwt_keys[1]", "duplicate kid \"a\"", "also jwt_keys[0]"],
    );
    // A JWKS kid may clash with a config kid too.
    let dup_jwks = load_err(&[
        pem_file_cfg("es-1", "es256.pub", &["ES256"]),
        jwks_cfg(&key_path("jwks.json"), &["ES256", "EdDSA"]),
    ]);
    assert_mentions(
        &dup_jwks,
        &["jwt_keys[1]", "keys[0]", "duplicate kid \"es-1\""],
    );
    let two = load_err(&[
        secret_cfg("", SECRET, &["HS256"]),
        pem_file_cfg("", "es256.pub", &["ES256"]),
    ]);
    assert_mentions(
        &two,
        &[
            "jwt_keys[1]",
            "more than one key without a kid",
            "jwt_keys[0]",
        ],
    );
}

#[test]
fn refuses_no_source_and_several_sources() {
    let none = load_err(&[JwtKeyConfig {
        kid: "k".into(),
        algorithms: algs(&["HS256"]),
        ..Default::default()
    }]);
    assert_mentions(&none, &["jwt_keys[0]", "no key source"]);
    let both = load_err(&[JwtKeyConfig {
        public_key_pem: key_text("es256.pub"),
        ..secret_cfg("k", SECRET, &["HS256"])
    }]);
    assert_mentions(&both, &["several key sources (secret, public_key_pem)"]);
}

#[test]
fn refuses_bad_jwks_entries() {
    let mut no_kid = committed_jwks();
    no_kid[1].as_object_mut().unwrap().remove("kid");
    let (_dir, path) = jwks_file("no-kid", json!(no_kid));
    let err = load_err(&[jwks_cfg(&path, &["ES256", "EdDSA"])]);
    assert_mentions(&err, &["jwt_keys[0]", "jwks.json", "keys[1]", "has no kid"]);

    let mut foreign_alg = committed_jwks();
    foreign_alg[0]["alg"] = json!("ES384");
    let (_dir, path) = jwks_file("es384", json!(foreign_alg));
    let err = load_err(&[jwks_cfg(&path, &["ES256", "EdDSA"])]);
    assert_mentions(
        &err,
        &[
            "keys[0]",
            "kid \"es-1\"",
            "alg \"ES384\" is not an allowed algorithm",
        ],
    );

    // Allowed in general, but not by this entry.
    let err = load_err(&[jwks_cfg(&key_path("jwks.json"), &["ES256"])]);
    assert_mentions(
        &err,
        &[
            "keys[1]",
            "kid \"ed-1\"",
            "alg \"EdDSA\" is not in this entry's algorithms",
        ],
    );

    let mut enc = committed_jwks();
    enc[0]["use"] = json!("enc");
    let (_dir, path) = jwks_file("enc", json!(enc));
    assert_mentions(
        &load_err(&[jwks_cfg(&path, &["ES256", "EdDSA"])]),
        &["use is \"enc\""],
    );

    let mut private = committed_jwks();
    private[1]["d"] = json!("AAAA");
    let (_dir, path) = jwks_file("private", json!(private));
    assert_mentions(
        &load_err(&[jwks_cfg(&path, &["ES256", "EdDSA"])]),
        &["keys[1]", "private key"],
    );

    let mut short = committed_jwks();
    short[1]["x"] = json!("AAAA");
    let (_dir, path) = jwks_file("short", json!(short));
    assert_mentions(
        &load_err(&[jwks_cfg(&path, &["ES256", "EdDSA"])]),
        &["keys[1]", "3 bytes, not 32"],
    );

    let (_dir, path) = jwks_file("not-jwks", json!([]));
    std::fs::write(&path, "{\"kes\": []}").unwrap();
    assert_mentions(&load_err(&[jwks_cfg(&path, &["ES256"])]), &["not a JWKS"]);
}

#[test]
fn refuses_a_jwk_point_off_the_curve() {
    let mut keys = committed_jwks();
    // Another key's x with this key's y: not a point of P-256.
    keys[0]["x"] = keys[0]["y"].clone();
    let (_dir, path) = jwks_file("off-curve", json!(keys));
    let err = load_err(&[jwks_cfg(&path, &["ES256", "EdDSA"])]);
    assert_mentions(&err, &["keys[0]", "does not work with ES256"]);
}
