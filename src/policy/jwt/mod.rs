//! JWT verification: the keys that verify tokens (`KeySet`, from PEM, HMAC secrets and JWKS
//! files), what a verified token grants (`VerifiedToken`), and their reload (`JwtKeys`).

mod b64;
mod jwks;
mod keys;
mod reload;
mod source;
mod verify;

#[cfg(test)]
mod tests;

pub use keys::KeySet;
pub use reload::JwtKeys;

use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::config::AuthConfig;

/// Checks at start that jsonwebtoken has a crypto provider, so a misbuilt binary (none or two
/// backends) stops with this message instead of panicking at the first token.
pub fn check_crypto_backend() -> Result<(), String> {
    let Some(provider) = CryptoProvider::try_get_default() else {
        return Err(
            "jsonwebtoken has no crypto provider: build it with exactly one of its \
                    `rust_crypto` and `aws_lc_rs` features"
                .to_owned(),
        );
    };
    // Building a verifier goes through the provider's own code, not just its presence.
    let probe = DecodingKey::from_secret(b"sluicegate-crypto-probe")
        .map_err(|e| format!("jsonwebtoken crypto provider unusable: {e}"))?;
    (provider.verifier_factory)(&Algorithm::HS256, &probe)
        .map(|_| ())
        .map_err(|e| format!("jsonwebtoken crypto provider unusable: {e}"))
}

/// What a token's claims are checked against besides its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway_s: u64,
    /// Required `iss`; `None` does not check it.
    pub issuer: Option<String>,
    /// Required member of `aud` (a string or an array); `None` does not check it.
    pub audience: Option<String>,
    /// Name of the claim holding `{"publish": [...], "subscribe": [...]}`.
    pub claim: String,
}

impl JwtSettings {
    /// The settings of `[auth]`; an empty `issuer` / `audience` is not checked.
    pub fn from_config(auth: &AuthConfig) -> Self {
        Self {
            leeway_s: auth.leeway_s,
            issuer: non_empty(&auth.issuer),
            audience: non_empty(&auth.audience),
            claim: auth.claim.clone(),
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// What a verified token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifiedToken {
    /// The `sub` claim, if any.
    pub sub: Option<String>,
    /// The `exp` claim (unix seconds), if any: how long a cache may keep this verdict.
    pub exp: Option<u64>,
    /// Topic patterns the token may publish to (empty when the claim is absent).
    pub publish: Vec<String>,
    /// Topic patterns the token may subscribe to (empty when the claim is absent).
    pub subscribe: Vec<String>,
}

/// Why a token was refused. Carries no token or key material: its text goes to clients in
/// `WWW-Authenticate: Bearer error="invalid_token", error_description="..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.description())]
pub enum JwtError {
    /// `exp` + leeway is before now.
    Expired,
    /// `nbf` - leeway is after now.
    NotYetValid,
    /// The header's `kid` names no key (or there is no `kid` and no kid-less key).
    UnknownKid,
    /// The header's `alg` is `none`, unknown, or not in the chosen key's allowlist.
    AlgorithmNotAllowed,
    /// The signature does not verify with the chosen key.
    BadSignature,
    /// `iss` is missing or not the configured issuer.
    WrongIssuer,
    /// `aud` is missing or does not contain the configured audience.
    WrongAudience,
    /// Not three base64url parts of JSON, or a registered claim of the wrong type.
    Malformed,
    /// The configured claim is not `{"publish": [strings], "subscribe": [strings]}`.
    BadClaim,
}

impl JwtError {
    /// The `error_description` for `WWW-Authenticate`.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Expired => "token expired",
            Self::NotYetValid => "token not yet valid",
            Self::UnknownKid => "unknown key id",
            Self::AlgorithmNotAllowed => "algorithm not allowed for this key",
            Self::BadSignature => "bad signature",
            Self::WrongIssuer => "wrong issuer",
            Self::WrongAudience => "wrong audience",
            Self::Malformed => "malformed token",
            Self::BadClaim => "bad sluicegate claim",
        }
    }
}
