//! STUB (replaced by the helper's module at merge).
#![allow(dead_code)]
use std::borrow::Cow;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    Header,
    Query,
    Cookie,
}
pub struct Credential<'a> {
    pub token: Cow<'a, str>,
    pub source: CredentialSource,
}
#[derive(Debug, thiserror::Error)]
#[error("bad credential")]
pub struct CredentialError;
impl CredentialError {
    pub fn is_invalid_request(&self) -> bool {
        true
    }
}
pub fn extract<'a>(
    authorization: Option<&'a [u8]>,
    _cookie_headers: &[&'a [u8]],
    _query: &'a str,
    _qp: &str,
    _cookie: &str,
) -> Result<Option<Credential<'a>>, CredentialError> {
    match authorization {
        None => Ok(None),
        Some(a) => {
            let s = std::str::from_utf8(a).map_err(|_| CredentialError)?;
            let t = s.strip_prefix("Bearer ").ok_or(CredentialError)?;
            Ok(Some(Credential {
                token: Cow::Borrowed(t),
                source: CredentialSource::Header,
            }))
        }
    }
}
