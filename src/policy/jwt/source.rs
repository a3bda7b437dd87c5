//! Where a `[[auth.jwt_keys]]` entry's key comes from (`secret`, `secret_file`,
//! `public_key_pem`, `pem_file`, `jwks_file`: exactly one) and turning it into checked keys.

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

use super::jwks;
use super::keys::{algorithm_named, allowed_names, check_fit, Key, Origin};
use crate::config::JwtKeyConfig;

/// Parses a config entry's `algorithms`: at least one, each from the allowlist.
pub(super) fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>, String> {
    if names.is_empty() {
        return Err(format!(
            "algorithms is empty: list the ones this key may verify ({})",
            allowed_names()
        ));
    }
    let mut algs = Vec::with_capacity(names.len());
    for name in names {
        let alg = algorithm_named(name)
            .ok_or_else(|| format!("unknown algorithm {name:?} (allowed: {})", allowed_names()))?;
        if !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    Ok(algs)
}

/// Where a config entry's key comes from: exactly one of its five fields.
enum Source<'a> {
    Secret(&'a str),
    SecretFile(&'a str),
    Pem(&'a str),
    PemFile(&'a str),
    Jwks(&'a str),
}

impl<'a> Source<'a> {
    fn of(cfg: &'a JwtKeyConfig) -> Result<Self, String> {
        let all = [
            ("secret", &cfg.secret, Source::Secret as fn(&'a str) -> Self),
            ("secret_file", &cfg.secret_file, Source::SecretFile),
            ("public_key_pem", &cfg.public_key_pem, Source::Pem),
            ("pem_file", &cfg.pem_file, Source::PemFile),
            ("jwks_file", &cfg.jwks_file, Source::Jwks),
        ];
        let given: Vec<_> = all.into_iter().filter(|(_, v, _)| !v.is_empty()).collect();
        match given.as_slice() {
            [(_, value, make)] => Ok(make(value)),
            [] => Err(
                "no key source: set one of secret, secret_file, public_key_pem, \
                       pem_file, jwks_file"
                    .to_owned(),
            ),
            several => {
                let names: Vec<&str> = several.iter().map(|(n, _, _)| *n).collect();
                Err(format!(
                    "several key sources ({}): set exactly one",
                    names.join(", ")
                ))
            }
        }
    }
}

/// The file a config entry reads, if any: what the watcher polls.
pub(super) fn file_of(cfg: &JwtKeyConfig) -> Option<&str> {
    match Source::of(cfg).ok()? {
        Source::SecretFile(p) | Source::PemFile(p) | Source::Jwks(p) => Some(p),
        Source::Secret(_) | Source::Pem(_) => None,
    }
}

fn read_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read the file: {e}"))
}

/// An HMAC key. A secret file's trailing newlines are dropped (`echo secret > file`).
fn secret_key(origin: Origin, secret: &str, algs: &[Algorithm]) -> Result<Key, String> {
    check_fit(AlgorithmFamily::Hmac, algs)?;
    let decoding = DecodingKey::from_secret(secret.as_bytes())
        .map_err(|_| "the secret is empty".to_owned())?;
    if secret.len() < 32 {
        // RFC 7518 §3.2 wants at least the hash size; refusing would break existing setups.
        tracing::warn!(key = %origin, "jwt HMAC secret is shorter than 32 bytes");
    }
    Key::new(origin, decoding, algs)
}

/// A public key from PEM: RSA, EC (P-256) or Ed25519, told apart by the PEM's contents.
fn pem_key(origin: Origin, pem: &str, algs: &[Algorithm]) -> Result<Key, String> {
    if !pem.contains("-----BEGIN ") {
        return Err("not PEM (expected -----BEGIN PUBLIC KEY-----)".to_owned());
    }
    if pem.contains("PRIVATE KEY-----") {
        return Err(
            "the PEM holds a private key: give the public key (openssl pkey -pubout)".to_owned(),
        );
    }
    let bytes = pem.as_bytes();
    let decoding = DecodingKey::from_rsa_pem(bytes)
        .or_else(|_| DecodingKey::from_ec_pem(bytes))
        .or_else(|_| DecodingKey::from_ed_pem(bytes))
        .map_err(|_| "the PEM holds no RSA, EC or Ed25519 public key".to_owned())?;
    Key::new(origin, decoding, algs)
}

/// The keys of one config entry: one, or a JWKS file's.
pub(super) fn load_entry(index: usize, cfg: &JwtKeyConfig) -> Result<Vec<Key>, String> {
    let mut origin = Origin {
        index,
        kid: (!cfg.kid.is_empty()).then(|| cfg.kid.clone()),
        file: None,
        jwks_entry: None,
    };
    let source = Source::of(cfg).map_err(|e| format!("{origin}: {e}"))?;
    let algs = parse_algorithms(&cfg.algorithms).map_err(|e| format!("{origin}: {e}"))?;
    origin.file = file_of(cfg).map(str::to_owned);
    if let Source::Jwks(_) = source {
        // A JWKS file's keys carry their own kids; the entry's `kid` is ignored.
        origin.kid = None;
    }
    let at = |e: String| format!("{origin}: {e}");
    match source {
        Source::Secret(s) => Ok(vec![secret_key(origin.clone(), s, &algs).map_err(at)?]),
        Source::SecretFile(p) => {
            let text = read_file(p).map_err(at)?;
            let secret = text.trim_end_matches(['\n', '\r']);
            Ok(vec![secret_key(origin.clone(), secret, &algs).map_err(at)?])
        }
        Source::Pem(pem) => Ok(vec![pem_key(origin.clone(), pem, &algs).map_err(at)?]),
        Source::PemFile(p) => {
            let text = read_file(p).map_err(at)?;
            Ok(vec![pem_key(origin.clone(), &text, &algs).map_err(at)?])
        }
        Source::Jwks(p) => {
            let text = read_file(p).map_err(at)?;
            jwks::load(&origin, &text, &algs)
        }
    }
}
