//! Tests of JWT verification and key loading: tokens minted here with the test keys in
//! `tests/keys/`, time always passed in.

mod load;
mod reload;
mod verify;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::{JwtSettings, KeySet};
use crate::config::JwtKeyConfig;

/// A fixed "now" for every test: 2023-11-14T22:13:20Z.
pub(super) const NOW: u64 = 1_700_000_000;

pub(super) const SECRET: &str = "a-test-secret-that-is-32-bytes!!";

pub(super) fn key_path(name: &str) -> String {
    format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub(super) fn key_text(name: &str) -> String {
    std::fs::read_to_string(key_path(name)).unwrap()
}

pub(super) fn algs(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub(super) fn secret_cfg(kid: &str, secret: &str, names: &[&str]) -> JwtKeyConfig {
    JwtKeyConfig {
        kid: kid.into(),
        algorithms: algs(names),
        secret: secret.into(),
        ..Default::default()
    }
}

pub(super) fn pem_file_cfg(kid: &str, file: &str, names: &[&str]) -> JwtKeyConfig {
    JwtKeyConfig {
        kid: kid.into(),
        algorithms: algs(names),
        pem_file: key_path(file),
        ..Default::default()
    }
}

pub(super) fn jwks_cfg(path: &str, names: &[&str]) -> JwtKeyConfig {
    JwtKeyConfig {
        algorithms: algs(names),
        jwks_file: path.into(),
        ..Default::default()
    }
}

pub(super) fn settings() -> JwtSettings {
    JwtSettings {
        leeway_s: 30,
        issuer: None,
        audience: None,
        claim: "sluicegate".into(),
    }
}

pub(super) fn hs_key() -> EncodingKey {
    EncodingKey::from_secret(SECRET.as_bytes()).unwrap()
}

pub(super) fn es_key() -> EncodingKey {
    EncodingKey::from_ec_pem(key_text("es256.key").as_bytes()).unwrap()
}

pub(super) fn rs_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(key_text("rs256.key").as_bytes()).unwrap()
}

pub(super) fn ed_key() -> EncodingKey {
    EncodingKey::from_ed_pem(key_text("ed25519.key").as_bytes()).unwrap()
}

/// A signed token with `alg` and `kid` in its header.
pub(super) fn mint(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}

/// Claims valid at [`NOW`] granting one topic each way.
pub(super) fn claims() -> Value {
    json!({
        "sub": "alice",
        "exp": NOW + 600,
        "sluicegate": {"publish": ["orders.*"], "subscribe": ["orders.**"]},
    })
}

/// base64url without padding, for hand-built tokens.
pub(super) fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A token from raw header and payload JSON and a signature part, signed by nothing.
pub(super) fn raw_token(header: &str, payload: &str, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64url(header.as_bytes()),
        b64url(payload.as_bytes())
    )
}

/// One HS256 key without a kid, the simplest set.
pub(super) fn hs_set() -> KeySet {
    KeySet::load(&[secret_cfg("", SECRET, &["HS256"])]).unwrap()
}

/// A directory of its own under the system temp dir, removed on drop.
pub(super) struct TempDir(std::path::PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("sluicegate-jwt-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// The path of `name` in this directory, as config files name it.
    pub(super) fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn crypto_backend_is_usable() {
    super::check_crypto_backend().unwrap();
}

#[test]
fn b64url_helper_matches_known_vector() {
    assert_eq!(b64url(b"foobar"), "Zm9vYmFy");
    assert_eq!(b64url(b"fooba"), "Zm9vYmE");
    assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
}
