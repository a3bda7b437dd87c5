//! `KeySet::verify`: pick the key by the header's `kid`, hold the header's `alg` to that key's
//! allowlist, let jsonwebtoken check the signature, then check the claims against the `now`
//! passed in (never the system clock, so tests and caches agree on time).
//!
//! Claim rules: `exp` is optional (a token without it does not expire; issuers that want
//! expiry set it) and enforced when present; `nbf` likewise; `iss` / `aud` are required when
//! configured; a registered claim of the wrong type, or `null` where a value is needed, makes
//! the token malformed. Numeric dates may be fractional: `exp` is rounded down and `nbf` up.

use jsonwebtoken::errors::ErrorKind;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::keys::KeySet;
use super::{b64, JwtError, JwtSettings, VerifiedToken};

/// The header fields read before the signature is checked.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
}

impl KeySet {
    /// Verifies `token` (the compact JWS, without `Bearer `) at `now_unix` and returns what it
    /// grants. A token naming no `kid` uses the kid-less key; a `kid` that names no key is
    /// refused, never tried against the others.
    pub fn verify(
        &self,
        token: &str,
        settings: &JwtSettings,
        now_unix: u64,
    ) -> Result<VerifiedToken, JwtError> {
        let header = read_header(token)?;
        let key = self
            .key_for(header.kid.as_deref())
            .ok_or(JwtError::UnknownKid)?;
        // The allowlist is the key's: an HS256 token cannot reach an RSA key's bytes as an
        // HMAC secret, because that key allows no HS*.
        let validation = key
            .validation_for(&header.alg)
            .ok_or(JwtError::AlgorithmNotAllowed)?;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, validation)
            .map_err(|e| decode_error(e.kind()))?
            .claims;
        check_claims(&claims, settings, now_unix)
    }
}

fn read_header(token: &str) -> Result<RawHeader, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let json = b64::decode(header.as_bytes()).ok_or(JwtError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| JwtError::Malformed)
}

fn decode_error(kind: &ErrorKind) -> JwtError {
    match kind {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        // Our header read and jsonwebtoken's disagreed on `alg`: refuse as not allowed.
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            JwtError::AlgorithmNotAllowed
        }
        _ => JwtError::Malformed,
    }
}

fn check_claims(
    claims: &Map<String, Value>,
    settings: &JwtSettings,
    now: u64,
) -> Result<VerifiedToken, JwtError> {
    let exp = numeric_date(claims.get("exp"), f64::floor)?;
    if exp.is_some_and(|exp| exp.saturating_add(settings.leeway_s) < now) {
        return Err(JwtError::Expired);
    }
    let nbf = numeric_date(claims.get("nbf"), f64::ceil)?;
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(settings.leeway_s)) {
        return Err(JwtError::NotYetValid);
    }
    if let Some(want) = &settings.issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(want.as_str()) {
            return Err(JwtError::WrongIssuer);
        }
    }
    if let Some(want) = &settings.audience {
        if !audience_has(claims.get("aud"), want) {
            return Err(JwtError::WrongAudience);
        }
    }
    let sub = match present(claims.get("sub")) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(JwtError::Malformed),
    };
    let (publish, subscribe) = topic_claim(claims.get(&settings.claim))?;
    Ok(VerifiedToken {
        sub,
        exp,
        publish,
        subscribe,
    })
}

/// A claim's value, with `null` read as absent.
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// A NumericDate (RFC 7519 §2): non-negative seconds, possibly fractional (`round` says which
/// way); anything else is malformed.
fn numeric_date(value: Option<&Value>, round: fn(f64) -> f64) -> Result<Option<u64>, JwtError> {
    let Some(value) = present(value) else {
        return Ok(None);
    };
    if let Some(n) = value.as_u64() {
        return Ok(Some(n));
    }
    match value.as_f64() {
        // `as` saturates past u64::MAX, which only moves a far-off date farther.
        Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(round(f) as u64)),
        _ => Err(JwtError::Malformed),
    }
}

/// Whether `aud` (a string or an array of strings) holds `want`.
fn audience_has(aud: Option<&Value>, want: &str) -> bool {
    match aud {
        Some(Value::String(s)) => s == want,
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(want)),
        _ => false,
    }
}

/// The configured claim: absent = no topics; otherwise exactly `{"publish": [strings],
/// "subscribe": [strings]}`, either list optional. Unknown members are refused so a typo
/// (`"publsh"`) shows up at the issuer instead of as a silently empty grant.
fn topic_claim(claim: Option<&Value>) -> Result<(Vec<String>, Vec<String>), JwtError> {
    let Some(claim) = present(claim) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let obj = claim.as_object().ok_or(JwtError::BadClaim)?;
    if obj.keys().any(|k| k != "publish" && k != "subscribe") {
        return Err(JwtError::BadClaim);
    }
    Ok((
        string_list(obj.get("publish"))?,
        string_list(obj.get("subscribe"))?,
    ))
}

fn string_list(value: Option<&Value>) -> Result<Vec<String>, JwtError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let items = value.as_array().ok_or(JwtError::BadClaim)?;
    items
        .iter()
        .map(|v| v.as_str().map(str::to_owned).ok_or(JwtError::BadClaim))
        .collect()
}
