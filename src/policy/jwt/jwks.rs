//! Keys from a JWKS file (`{"keys": [...]}`, RFC 7517). Every key needs a `kid` (that is how
//! tokens pick it); the config entry's `algorithms` apply to each key, narrowed to its family
//! and to the key's own `alg` when it has one.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;

use super::keys::{algorithm_named, family_name, Key, Origin};

/// The keys of a JWKS document; `origin` is the config entry (with its file).
pub(super) fn load(origin: &Origin, text: &str, algs: &[Algorithm]) -> Result<Vec<Key>, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("{origin}: not a JWKS (bad JSON: {e})"))?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{origin}: not a JWKS (no \"keys\" array)"))?;
    entries
        .iter()
        .enumerate()
        .map(|(i, raw)| entry(origin, i, raw, algs))
        .collect()
}

fn entry(origin: &Origin, i: usize, raw: &Value, algs: &[Algorithm]) -> Result<Key, String> {
    let mut origin = origin.clone();
    origin.jwks_entry = Some(i);
    origin.kid = raw.get("kid").and_then(Value::as_str).map(str::to_owned);
    let at = |e: String| format!("{origin}: {e}");
    if origin.kid.as_deref().is_none_or(str::is_empty) {
        return Err(at("has no kid: each JWKS key needs one".to_owned()));
    }
    check_use(raw).map_err(at)?;
    let jwk: Jwk =
        serde_json::from_value(raw.clone()).map_err(|e| at(format!("not a JWK: {e}")))?;
    let family = family_of(&jwk).map_err(at)?;
    let effective = algorithms_for(raw, family, algs).map_err(at)?;
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| at(format!("bad key: {e}")))?;
    Key::new(origin.clone(), decoding, &effective).map_err(at)
}

/// Refuses encryption keys and private keys: a JWKS here only verifies signatures, and a
/// private key in it is a leak waiting to be published.
fn check_use(raw: &Value) -> Result<(), String> {
    if let Some(usage) = raw.get("use") {
        if usage != "sig" {
            return Err(format!("use is {usage}, not \"sig\""));
        }
    }
    let symmetric = raw.get("kty").and_then(Value::as_str) == Some("oct");
    if !symmetric && raw.get("d").is_some() {
        return Err("holds a private key (\"d\"): publish the public part only".to_owned());
    }
    Ok(())
}

fn family_of(jwk: &Jwk) -> Result<AlgorithmFamily, String> {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Ok(AlgorithmFamily::Rsa),
        AlgorithmParameters::OctetKey(_) => Ok(AlgorithmFamily::Hmac),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            Ok(AlgorithmFamily::Ec)
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Ok(AlgorithmFamily::Ed)
        }
        AlgorithmParameters::EllipticCurve(p) => Err(format!(
            "curve {:?} is not supported (ES256 needs P-256)",
            p.curve
        )),
        AlgorithmParameters::OctetKeyPair(p) => Err(format!(
            "curve {:?} is not supported (EdDSA needs Ed25519)",
            p.curve
        )),
        _ => Err("unsupported kty (RSA, EC, OKP or oct)".to_owned()),
    }
}

/// The entry's algorithms that fit this key's family; only the key's own `alg` if it names
/// one, which must be allowed and in the entry's list.
fn algorithms_for(
    raw: &Value,
    family: AlgorithmFamily,
    algs: &[Algorithm],
) -> Result<Vec<Algorithm>, String> {
    if let Some(own) = raw.get("alg") {
        let alg = own
            .as_str()
            .and_then(algorithm_named)
            .ok_or_else(|| format!("alg {own} is not an allowed algorithm"))?;
        if !algs.contains(&alg) {
            return Err(format!("alg {own} is not in this entry's algorithms"));
        }
        return Ok(vec![alg]);
    }
    let fitting: Vec<Algorithm> = algs
        .iter()
        .copied()
        .filter(|a| a.family() == family)
        .collect();
    if fitting.is_empty() {
        return Err(format!(
            "none of this entry's algorithms fits an {}",
            family_name(family)
        ));
    }
    Ok(fitting)
}
