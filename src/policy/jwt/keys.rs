//! `KeySet`: the JWT verification keys of `[[auth.jwt_keys]]`, loaded and checked up front. Each
//! key carries its own algorithm allowlist, and an algorithm of the wrong family for its key
//! (HS256 on a public key, RS256 on a secret) is refused here, at load, rather than left for a
//! token to probe.

use std::collections::HashMap;
use std::fmt;

use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};

use super::source::load_entry;
use crate::config::JwtKeyConfig;

/// The algorithm names a key's allowlist may hold. RS384/512, PS*, ES384 are left out on
/// purpose: fewer code paths facing untrusted input.
const ALLOWED: [(&str, Algorithm); 6] = [
    ("HS256", Algorithm::HS256),
    ("HS384", Algorithm::HS384),
    ("HS512", Algorithm::HS512),
    ("RS256", Algorithm::RS256),
    ("ES256", Algorithm::ES256),
    ("EdDSA", Algorithm::EdDSA),
];

/// The algorithm a name in the allowlist stands for; `None` for anything else, `none` included.
pub(super) fn algorithm_named(name: &str) -> Option<Algorithm> {
    ALLOWED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, alg)| alg)
}

pub(super) fn allowed_names() -> String {
    ALLOWED.map(|(n, _)| n).join(", ")
}

/// The family's name as a person would write it, for load errors.
pub(super) fn family_name(family: AlgorithmFamily) -> &'static str {
    match family {
        AlgorithmFamily::Hmac => "HMAC secret",
        AlgorithmFamily::Rsa => "RSA public key",
        AlgorithmFamily::Ec => "EC public key",
        AlgorithmFamily::Ed => "Ed25519 public key",
    }
}

/// Which config entry (and file) a key came from, the prefix of every load error about it.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    pub(super) index: usize,
    pub(super) kid: Option<String>,
    pub(super) file: Option<String>,
    /// Position in a JWKS file's `keys`.
    pub(super) jwks_entry: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kid = match &self.kid {
            Some(kid) => format!("kid {kid:?}"),
            None => "no kid".to_owned(),
        };
        write!(f, "jwt_keys[{}] (", self.index)?;
        match (&self.file, self.jwks_entry) {
            (Some(file), Some(entry)) => write!(f, "file {file:?}, keys[{entry}] {kid})"),
            (Some(file), None) => write!(f, "{kid}, file {file:?})"),
            (None, _) => write!(f, "{kid})"),
        }
    }
}

/// One verification key and, per algorithm it allows, the `Validation` jsonwebtoken checks the
/// signature with (prepared once: nothing is built per token but the verifier).
pub(super) struct Key {
    pub(super) origin: Origin,
    pub(super) decoding: DecodingKey,
    allowed: Vec<(Algorithm, Validation)>,
}

impl Key {
    /// A key allowing `algs`, each of which must fit its family; the key material is checked by
    /// building a verifier for each.
    pub(super) fn new(
        origin: Origin,
        decoding: DecodingKey,
        algs: &[Algorithm],
    ) -> Result<Self, String> {
        check_fit(decoding.family(), algs)?;
        check_material(&decoding, algs)?;
        let allowed = algs.iter().map(|&alg| (alg, signature_only(alg))).collect();
        Ok(Self {
            origin,
            decoding,
            allowed,
        })
    }

    /// The prepared `Validation` for the header's `alg`, if this key allows it.
    pub(super) fn validation_for(&self, alg_name: &str) -> Option<&Validation> {
        let alg = algorithm_named(alg_name)?;
        self.allowed.iter().find(|(a, _)| *a == alg).map(|(_, v)| v)
    }
}

/// A `Validation` that checks the algorithm and the signature only. Claims are checked by
/// `verify` against the `now` it is given: jsonwebtoken would read the system clock, and with
/// its default `required_spec_claims` it would also demand `exp`.
fn signature_only(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.leeway = 0;
    v
}

pub(super) fn check_fit(family: AlgorithmFamily, algs: &[Algorithm]) -> Result<(), String> {
    for alg in algs {
        if alg.family() == family {
            continue;
        }
        return Err(match (alg.family(), family) {
            (AlgorithmFamily::Hmac, _) => format!(
                "{alg:?} needs an HMAC secret (secret, secret_file), not an {}",
                family_name(family)
            ),
            (_, AlgorithmFamily::Hmac) => format!(
                "{alg:?} needs a public key (public_key_pem, pem_file, jwks_file), not a secret"
            ),
            _ => format!("{alg:?} does not fit an {}", family_name(family)),
        });
    }
    Ok(())
}

/// Builds the verifier once per algorithm, so a broken key stops the load instead of failing
/// every token. Ed25519 is length-checked first: jsonwebtoken slices `[..32]` and would panic.
fn check_material(key: &DecodingKey, algs: &[Algorithm]) -> Result<(), String> {
    let provider = CryptoProvider::try_get_default()
        .ok_or_else(|| "jsonwebtoken has no crypto provider".to_owned())?;
    if key.family() == AlgorithmFamily::Ed {
        let len = key.try_get_as_bytes().map(<[u8]>::len).unwrap_or(0);
        if len != 32 {
            return Err(format!("Ed25519 public key is {len} bytes, not 32"));
        }
    }
    for alg in algs {
        (provider.verifier_factory)(alg, key)
            .map_err(|e| format!("key does not work with {alg:?}: {e}"))?;
    }
    Ok(())
}

/// The keys that verify JWTs, by `kid`, plus at most one for tokens without a `kid`. Immutable:
/// a reload builds a new one (see `JwtKeys`).
pub struct KeySet {
    pub(super) by_kid: HashMap<String, Key>,
    pub(super) kidless: Option<Key>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.kids())
            .finish()
    }
}

impl KeySet {
    /// Loads and checks every key of `[[auth.jwt_keys]]`. The error names the entry (index,
    /// kid, file) and what is wrong with it.
    pub fn load(keys: &[JwtKeyConfig]) -> Result<KeySet, String> {
        super::check_crypto_backend()?;
        let mut set = KeySet {
            by_kid: HashMap::new(),
            kidless: None,
        };
        for (index, cfg) in keys.iter().enumerate() {
            for key in load_entry(index, cfg)? {
                set.insert(key)?;
            }
        }
        Ok(set)
    }

    fn insert(&mut self, key: Key) -> Result<(), String> {
        let slot = match &key.origin.kid {
            Some(kid) => self.by_kid.get(kid.as_str()),
            None => self.kidless.as_ref(),
        };
        if let Some(first) = slot {
            let what = match &key.origin.kid {
                Some(kid) => format!("duplicate kid {kid:?}"),
                None => "more than one key without a kid".to_owned(),
            };
            return Err(format!("{}: {what} (also {})", key.origin, first.origin));
        }
        match key.origin.kid.clone() {
            Some(kid) => {
                self.by_kid.insert(kid, key);
            }
            None => self.kidless = Some(key),
        }
        Ok(())
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.by_kid.len() + usize::from(self.kidless.is_some())
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kids, sorted (for logs); a kid-less key shows as `""`.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.by_kid.keys().map(String::as_str).collect();
        kids.sort_unstable();
        if self.kidless.is_some() {
            kids.insert(0, "");
        }
        kids
    }

    /// The key a token's header names: by `kid`, or the kid-less key when it names none.
    pub(super) fn key_for(&self, kid: Option<&str>) -> Option<&Key> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None => self.kidless.as_ref(),
        }
    }
}
