//! JWT verification cost per token (`KeySet::verify`): HS256 (HMAC) and ES256 (P-256 ECDSA),
//! with a typical claim set. This is the cost a token pays once per shard before the token
//! cache remembers it.

use criterion::{black_box, Criterion};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use sluicegate::config::JwtKeyConfig;
use sluicegate::internals::policy::{JwtSettings, KeySet};

/// The time every token is checked at, inside their validity.
const NOW: u64 = 1_700_000_000;

const SECRET: &str = "bench-secret-bench-secret-32byte";

fn key_file(name: &str) -> String {
    format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn token(alg: Algorithm, kid: &str, key: &EncodingKey) -> String {
    let claims = serde_json::json!({
        "sub": "bench-client",
        "iss": "https://idp.example",
        "aud": ["gateway"],
        "exp": NOW + 3600,
        "sluicegate": {"publish": ["orders.*"], "subscribe": ["orders.**", "prices.eu.*"]},
    });
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    encode(&header, &claims, key).expect("mint bench token")
}

/// Benches `KeySet::verify` for an HS256 and an ES256 token.
pub fn benches(c: &mut Criterion) {
    let keys = KeySet::load(&[
        JwtKeyConfig {
            kid: "hs".into(),
            algorithms: vec!["HS256".into()],
            secret: SECRET.into(),
            ..Default::default()
        },
        JwtKeyConfig {
            kid: "es".into(),
            algorithms: vec!["ES256".into()],
            pem_file: key_file("es256.pub"),
            ..Default::default()
        },
    ])
    .expect("load bench keys");
    let settings = JwtSettings {
        leeway_s: 30,
        issuer: Some("https://idp.example".into()),
        audience: Some("gateway".into()),
        claim: "sluicegate".into(),
    };
    let hs_key = EncodingKey::from_secret(SECRET.as_bytes()).expect("hs key");
    let es_pem = std::fs::read(key_file("es256.key")).expect("read es256.key");
    let es_key = EncodingKey::from_ec_pem(&es_pem).expect("es key");

    for (name, token) in [
        ("jwt_verify_hs256", token(Algorithm::HS256, "hs", &hs_key)),
        ("jwt_verify_es256", token(Algorithm::ES256, "es", &es_key)),
    ] {
        keys.verify(&token, &settings, NOW)
            .expect("bench token verifies");
        c.bench_function(name, |b| {
            b.iter(|| keys.verify(black_box(&token), &settings, NOW))
        });
    }
}
