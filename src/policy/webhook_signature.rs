//! Verifying the signature a webhook provider puts on what it pushes: WebSub's
//! `X-Hub-Signature: sha256=<hex>` (sha256, sha384 or sha512 HMAC of the body) and Standard
//! Webhooks' `webhook-signature: v1,<base64>` (HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed
//! with the `whsec_`-prefixed base64 secret, the timestamp within a tolerance). Pure functions;
//! comparisons are constant-time (`Mac::verify_slice`).
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

/// Why a signature was not accepted (the 401's message; never echoes the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("{header}: {what}")]
    Malformed { header: &'static str, what: String },
    #[error("{0}: unsupported algorithm `{1}` (use sha256, sha384 or sha512)")]
    Algorithm(&'static str, String),
    #[error("signature does not match the body")]
    Mismatch,
    #[error("webhook-timestamp {timestamp} is more than {tolerance_s} s from now ({now})")]
    Stale {
        timestamp: i64,
        now: i64,
        tolerance_s: u64,
    },
    #[error("the receiver's secret is not valid: {0}")]
    BadSecret(String),
}

/// `X-Hub-Signature` as WebSub hubs send it: `method=hexdigest`.
pub const HUB_HEADER: &str = "x-hub-signature";

/// Check a WebSub `X-Hub-Signature` value against `body` with `secret`.
pub fn verify_hub_signature(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing(HUB_HEADER))?;
    let (method, hex_digest) =
        header
            .trim()
            .split_once('=')
            .ok_or_else(|| SignatureError::Malformed {
                header: HUB_HEADER,
                what: "expected `method=hexdigest`".into(),
            })?;
    let digest = decode_hex(hex_digest).ok_or_else(|| SignatureError::Malformed {
        header: HUB_HEADER,
        what: "the digest is not hex".into(),
    })?;
    let ok = match method.to_ascii_lowercase().as_str() {
        "sha256" => mac_matches::<Hmac<Sha256>>(secret, &[body], &digest),
        "sha384" => mac_matches::<Hmac<Sha384>>(secret, &[body], &digest),
        "sha512" => mac_matches::<Hmac<Sha512>>(secret, &[body], &digest),
        other => return Err(SignatureError::Algorithm(HUB_HEADER, other.to_owned())),
    };
    ok.then_some(()).ok_or(SignatureError::Mismatch)
}

/// The Standard Webhooks headers of one delivery.
#[derive(Debug, Clone, Copy)]
pub struct StandardHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Check Standard Webhooks headers against `body` with `secret` (`whsec_<base64>`, or plain
/// base64), at Unix time `now`: any `v1,` signature in the space-separated list may match.
pub fn verify_standard(
    secret: &str,
    headers: StandardHeaders<'_>,
    body: &[u8],
    now: i64,
    tolerance_s: u64,
) -> Result<(), SignatureError> {
    let key = standard_key(secret)?;
    let id = headers.id.ok_or(SignatureError::Missing("webhook-id"))?;
    let ts_text = headers
        .timestamp
        .ok_or(SignatureError::Missing("webhook-timestamp"))?;
    let signatures = headers
        .signature
        .ok_or(SignatureError::Missing("webhook-signature"))?;
    let timestamp: i64 = ts_text
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed {
            header: "webhook-timestamp",
            what: "not a Unix time in seconds".into(),
        })?;
    if now.abs_diff(timestamp) > tolerance_s {
        return Err(SignatureError::Stale {
            timestamp,
            now,
            tolerance_s,
        });
    }
    let prefix = format!("{id}.{timestamp}.");
    let mut any_v1 = false;
    for candidate in signatures.split_ascii_whitespace() {
        let Some(b64) = candidate.strip_prefix("v1,") else {
            continue;
        };
        any_v1 = true;
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            continue;
        };
        if mac_matches::<Hmac<Sha256>>(&key, &[prefix.as_bytes(), body], &sig) {
            return Ok(());
        }
    }
    if any_v1 {
        Err(SignatureError::Mismatch)
    } else {
        Err(SignatureError::Malformed {
            header: "webhook-signature",
            what: "no `v1,<base64>` signature".into(),
        })
    }
}

/// The HMAC key of a Standard Webhooks secret.
pub fn standard_key(secret: &str) -> Result<Vec<u8>, SignatureError> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| SignatureError::BadSecret(format!("not base64 after `whsec_`: {e}")))
}

/// Sign like a Standard Webhooks sender (`v1,<base64>`): what the outbound delivery engine
/// sends, and the receiver tests' reference.
pub fn sign_standard(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// WebSub's `X-Hub-Signature` value for `body` signed with `secret`: `sha256=<hex>`.
pub fn sign_hub_sha256(secret: &[u8], body: &[u8]) -> Option<String> {
    use std::fmt::Write as _;
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(secret).ok()?;
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    Some(out)
}

fn mac_matches<M: Mac + hmac::digest::KeyInit>(
    key: &[u8],
    parts: &[&[u8]],
    expected: &[u8],
) -> bool {
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(expected).is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
