//! STUB (replaced by the helper's module at merge).
#![allow(dead_code)]
use crate::config::{AuthConfig, JwtKeyConfig};
use std::sync::Arc;
use std::time::Duration;
pub fn check_crypto_backend() -> Result<(), String> {
    Ok(())
}
pub struct JwtSettings {
    pub leeway_s: u64,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub claim: String,
}
impl JwtSettings {
    pub fn from_config(c: &AuthConfig) -> Self {
        Self {
            leeway_s: c.leeway_s,
            issuer: None,
            audience: None,
            claim: c.claim.clone(),
        }
    }
}
pub struct VerifiedToken {
    pub sub: Option<String>,
    pub exp: Option<u64>,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}
#[derive(Debug, thiserror::Error)]
#[error("bad token")]
pub struct JwtError;
impl JwtError {
    pub fn description(&self) -> &'static str {
        "malformed token"
    }
}
pub struct KeySet;
impl KeySet {
    pub fn verify(&self, _t: &str, _s: &JwtSettings, _now: u64) -> Result<VerifiedToken, JwtError> {
        Err(JwtError)
    }
}
pub struct JwtKeys {
    set: Arc<KeySet>,
}
impl JwtKeys {
    pub fn new(_c: Vec<JwtKeyConfig>) -> Result<Self, String> {
        Ok(Self {
            set: Arc::new(KeySet),
        })
    }
    pub fn generation(&self) -> u64 {
        0
    }
    pub fn current(&self) -> (u64, Arc<KeySet>) {
        (0, self.set.clone())
    }
    pub fn reload(&self) -> Result<(), String> {
        Ok(())
    }
    pub fn spawn_file_watcher(self: &Arc<Self>, _p: Duration) {}
}
