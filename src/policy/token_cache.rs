//! Verified tokens remembered per shard, keyed by the token's SHA-256, until their `exp`: a
//! keep-alive client (or a proxy carrying many users) presenting the same token again is not
//! verified again. Cleared when the JWT keys change or the policy is reloaded.
use std::collections::HashMap;
use std::sync::Arc;

use super::api_keys::TokenDigest;
use super::principal::Principal;

/// A bounded map from token digest to its principal.
#[derive(Debug)]
pub struct TokenCache {
    entries: HashMap<TokenDigest, Arc<Principal>>,
    capacity: usize,
    /// The JWT key generation the entries were verified under.
    generation: u64,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
            generation: 0,
        }
    }

    /// The principal of a token verified before, still valid at `now_unix`, under key
    /// generation `generation` (a key change forgets everything).
    pub fn get(
        &mut self,
        digest: &TokenDigest,
        generation: u64,
        now_unix: u64,
    ) -> Option<Arc<Principal>> {
        if generation != self.generation {
            self.entries.clear();
            self.generation = generation;
            return None;
        }
        let principal = self.entries.get(digest)?;
        if principal.expires_at.is_some_and(|exp| exp < now_unix) {
            self.entries.remove(digest);
            return None;
        }
        Some(principal.clone())
    }

    /// Remember a verified token. When full, expired entries go first; if none expired, the
    /// whole cache is dropped (simple, and a full cache of live tokens is re-verified at the
    /// cost of one verification each).
    pub fn insert(&mut self, digest: TokenDigest, principal: Arc<Principal>, now_unix: u64) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.entries
                .retain(|_, p| p.expires_at.is_none_or(|exp| exp >= now_unix));
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
        }
        self.entries.insert(digest, principal);
    }

    /// Forget everything (the policy was reloaded: principals carry its limits).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rate;
    use crate::policy::acl::Acl;
    use crate::policy::principal::Kind;

    fn principal(exp: Option<u64>) -> Arc<Principal> {
        Arc::new(Principal {
            kind: Kind::Jwt,
            name: "jwt:a".into(),
            sub: Some("a".into()),
            publish: Arc::new(Acl::none()),
            subscribe: Arc::new(Acl::none()),
            expires_at: exp,
            publish_events: Rate::default(),
            publish_bytes: Rate::default(),
            admin: false,
        })
    }

    #[test]
    fn entries_live_until_exp_and_die_with_a_key_change() {
        let mut cache = TokenCache::new(4);
        cache.get(&[1; 32], 7, 0);
        cache.insert([1; 32], principal(Some(100)), 50);
        assert!(cache.get(&[1; 32], 7, 100).is_some());
        assert!(cache.get(&[1; 32], 7, 101).is_none(), "expired");
        cache.insert([2; 32], principal(None), 50);
        assert!(cache.get(&[2; 32], 8, 50).is_none(), "keys changed");
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_full_cache_stays_bounded() {
        let mut cache = TokenCache::new(3);
        for i in 0..10u8 {
            cache.insert([i; 32], principal(Some(10)), 5);
            assert!(cache.len() <= 3);
        }
        while cache.len() < 3 {
            cache.insert([cache.len() as u8 + 50; 32], principal(Some(10)), 5);
        }
        cache.insert([99; 32], principal(Some(100)), 20);
        assert_eq!(cache.len(), 1, "expired entries were dropped first");
    }
}
