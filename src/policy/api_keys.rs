//! API keys: the configured SHA-256 digests, each mapped to its principal. A presented key is
//! hashed once and looked up by its digest; the final comparison is constant-time.
//!
//! Why a digest lookup is safe: the map probe compares digests, not keys, so its timing can
//! at most tell an attacker something about SHA-256 of their own guess, which says nothing
//! about a stored key.
use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::acl::Acl;
use super::principal::{Kind, Principal};
use crate::config::{ApiKeyConfig, LimitsConfig};

/// SHA-256 of a credential: the API key lookup and the token cache key.
pub type TokenDigest = [u8; 32];

/// SHA-256 of `token`.
pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// Parse 64 hex digits (either case).
pub fn parse_digest_hex(text: &str) -> Option<TokenDigest> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// The configured API keys.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_digest: HashMap<TokenDigest, Arc<Principal>>,
}

impl ApiKeys {
    /// Build the table; the error names the key (by index and name) and what is wrong.
    pub fn from_config(keys: &[ApiKeyConfig], limits: &LimitsConfig) -> Result<Self, String> {
        let mut by_digest = HashMap::new();
        let mut names = std::collections::HashSet::new();
        for (i, key) in keys.iter().enumerate() {
            let at = format!("auth.api_keys[{i}]");
            if key.name.trim().is_empty() {
                return Err(format!("{at}: name is required"));
            }
            if !names.insert(key.name.as_str()) {
                return Err(format!("{at}: name `{}` is used twice", key.name));
            }
            let digest = parse_digest_hex(&key.sha256).ok_or_else(|| {
                format!(
                    "{at} ({}): sha256 must be 64 hex digits (printf %s \"$KEY\" | sha256sum)",
                    key.name
                )
            })?;
            let acl = |list: &[String], field: &str| {
                Acl::parse(list).map_err(|e| format!("{at} ({}): {field}: {e}", key.name))
            };
            let principal = Principal {
                kind: Kind::ApiKey,
                name: Arc::from(key.name.as_str()),
                sub: None,
                publish: Arc::new(acl(&key.publish, "publish")?),
                subscribe: Arc::new(acl(&key.subscribe, "subscribe")?),
                expires_at: None,
                publish_events: key.publish_events.unwrap_or(limits.publish_events),
                publish_bytes: key.publish_bytes.unwrap_or(limits.publish_bytes),
                admin: key.admin,
            };
            if by_digest.insert(digest, Arc::new(principal)).is_some() {
                return Err(format!(
                    "{at} ({}): the same key is configured twice",
                    key.name
                ));
            }
        }
        Ok(Self { by_digest })
    }

    /// The principal of the key whose digest is `presented`.
    pub fn lookup(&self, presented: &TokenDigest) -> Option<&Arc<Principal>> {
        let (stored, principal) = self.by_digest.get_key_value(presented)?;
        bool::from(stored.ct_eq(presented)).then_some(principal)
    }

    /// Every key's principal.
    pub fn principals(&self) -> impl Iterator<Item = &Arc<Principal>> {
        self.by_digest.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, secret: &str) -> ApiKeyConfig {
        let hex: String = digest(secret).iter().map(|b| format!("{b:02x}")).collect();
        ApiKeyConfig {
            name: name.into(),
            sha256: hex,
            publish: vec!["orders.*".into()],
            subscribe: vec!["**".into()],
            ..ApiKeyConfig::default()
        }
    }

    #[test]
    fn a_configured_key_finds_its_principal_and_others_do_not() {
        let keys =
            ApiKeys::from_config(&[key("billing", "s3cret")], &LimitsConfig::default()).unwrap();
        let found = keys.lookup(&digest("s3cret")).unwrap();
        assert_eq!(&*found.name, "billing");
        assert!(keys.lookup(&digest("s3cret ")).is_none());
        assert!(keys.lookup(&digest("")).is_none());
    }

    #[test]
    fn bad_digests_and_duplicates_are_named() {
        let limits = LimitsConfig::default();
        let mut bad = key("a", "x");
        bad.sha256 = "abc".into();
        let err = ApiKeys::from_config(&[bad], &limits).unwrap_err();
        assert!(
            err.contains("auth.api_keys[0] (a): sha256 must be 64 hex"),
            "{err}"
        );
        let err = ApiKeys::from_config(&[key("a", "x"), key("b", "x")], &limits).unwrap_err();
        assert!(err.contains("configured twice"), "{err}");
        let err = ApiKeys::from_config(&[key("a", "x"), key("a", "y")], &limits).unwrap_err();
        assert!(err.contains("used twice"), "{err}");
    }

    #[test]
    fn hex_parsing_takes_both_cases_and_refuses_junk() {
        let upper = "AB".repeat(32);
        assert_eq!(parse_digest_hex(&upper), Some([0xab; 32]));
        assert_eq!(parse_digest_hex(&"zz".repeat(32)), None);
        assert_eq!(parse_digest_hex("ab"), None);
    }
}
