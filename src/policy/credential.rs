//! Where a request's credential comes from: the `Authorization: Bearer` header, a query
//! parameter, or a cookie, in that order, checked for shape but not for validity (that is the
//! API-key and JWT code's job).

use std::borrow::Cow;
use std::fmt;

use crate::codec::query::{self, QueryError};

/// Longest token accepted, in bytes; longer is refused before any verification work.
pub const MAX_TOKEN_LEN: usize = 8192;

/// Where a credential was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialSource {
    /// `Authorization: Bearer <token>`.
    Header,
    /// The configured query parameter (`auth.query_param`).
    Query,
    /// The configured cookie (`auth.cookie`).
    Cookie,
}

impl CredentialSource {
    /// A short lowercase name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialSource::Header => "header",
            CredentialSource::Query => "query",
            CredentialSource::Cookie => "cookie",
        }
    }
}

/// A token and where it came from. Borrowed from the request unless percent-decoding made a
/// copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential<'a> {
    /// The token: visible ASCII, no spaces, at most [`MAX_TOKEN_LEN`] bytes.
    pub token: Cow<'a, str>,
    /// Where it was found.
    pub source: CredentialSource,
}

/// The RFC 6750 `error` code a refusal carries in `WWW-Authenticate: Bearer error="..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerErrorCode {
    /// The request is malformed (wrong scheme, no token where one was announced, bad query).
    InvalidRequest,
    /// A token was presented but cannot be one.
    InvalidToken,
}

impl BearerErrorCode {
    /// The code as it appears in the header.
    pub fn as_str(self) -> &'static str {
        match self {
            BearerErrorCode::InvalidRequest => "invalid_request",
            BearerErrorCode::InvalidToken => "invalid_token",
        }
    }
}

/// Which source an error is about, with its configured name, for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The source.
    pub source: CredentialSource,
    /// The query parameter's or cookie's name ("" for the header).
    pub name: String,
}

impl Place {
    fn header() -> Place {
        Place {
            source: CredentialSource::Header,
            name: String::new(),
        }
    }

    fn query(name: &str) -> Place {
        Place {
            source: CredentialSource::Query,
            name: name.to_owned(),
        }
    }

    fn cookie(name: &str) -> Place {
        Place {
            source: CredentialSource::Cookie,
            name: name.to_owned(),
        }
    }

    /// A hint for a token with a space: in a query, '+' is a space.
    fn space_hint(&self) -> &'static str {
        match self.source {
            CredentialSource::Query => " (in a query '+' means a space: escape it as %2B)",
            _ => "",
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            CredentialSource::Header => f.write_str("Authorization header"),
            CredentialSource::Query => write!(f, "{} query parameter", self.name.escape_debug()),
            CredentialSource::Cookie => write!(f, "{} cookie", self.name.escape_debug()),
        }
    }
}

/// Why a request's credential is unusable. Messages say what is wrong and never quote the
/// token (nor anything that might be one, such as an unknown scheme).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The Authorization header has bytes that are not UTF-8.
    #[error("the Authorization header is not valid UTF-8")]
    HeaderNotUtf8,
    /// The Authorization header uses another scheme (Basic, a bare token, ...).
    #[error("the Authorization header does not use the Bearer scheme (expected 'Bearer <token>')")]
    NotBearer,
    /// `Authorization: Bearer` with nothing after it.
    #[error("the Authorization header has the Bearer scheme but no token")]
    BearerWithoutToken,
    /// The Bearer token is not an RFC 6750 b64token.
    #[error(
        "the Bearer token in the Authorization header is malformed (RFC 6750 allows letters, \
         digits, '-', '.', '_', '~', '+', '/', then trailing '=')"
    )]
    MalformedBearer,
    /// The query string cannot be decoded (checked whole, like `query::first`).
    #[error("the query string has an invalid percent-escape (expected % and two hex digits)")]
    QueryEscape,
    /// The query string is not UTF-8 once decoded.
    #[error("the query string is not valid UTF-8 once percent-decoded")]
    QueryUtf8,
    /// The source is there but holds no token (`Authorization:`, `?access_token=`, `c=`).
    #[error("empty {0}")]
    Empty(Place),
    /// A cookie value opens a double quote and does not close it.
    #[error("the {0} has an unterminated double quote")]
    UnterminatedQuote(Place),
    /// The token has a space, a control or a non-ASCII character.
    #[error(
        "the token in the {0} may only contain visible ASCII characters, without spaces{hint}",
        hint = .0.space_hint()
    )]
    BadChars(Place),
    /// Over [`MAX_TOKEN_LEN`] bytes.
    #[error("the token in the {0} is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong(Place),
}

impl CredentialError {
    /// The RFC 6750 error code for `WWW-Authenticate`: `invalid_request` when the request is
    /// malformed (wrong scheme, missing token, bad encoding), `invalid_token` when what was
    /// presented as a token cannot be one.
    pub fn bearer_error_code(&self) -> BearerErrorCode {
        match self {
            CredentialError::HeaderNotUtf8
            | CredentialError::NotBearer
            | CredentialError::BearerWithoutToken
            | CredentialError::QueryEscape
            | CredentialError::QueryUtf8
            | CredentialError::Empty(_) => BearerErrorCode::InvalidRequest,
            CredentialError::MalformedBearer
            | CredentialError::UnterminatedQuote(_)
            | CredentialError::BadChars(_)
            | CredentialError::TooLong(_) => BearerErrorCode::InvalidToken,
        }
    }

    /// Where the problem is (not `source`, which is `std::error::Error`'s).
    pub fn credential_source(&self) -> CredentialSource {
        match self {
            CredentialError::HeaderNotUtf8
            | CredentialError::NotBearer
            | CredentialError::BearerWithoutToken
            | CredentialError::MalformedBearer => CredentialSource::Header,
            CredentialError::QueryEscape | CredentialError::QueryUtf8 => CredentialSource::Query,
            CredentialError::Empty(place)
            | CredentialError::UnterminatedQuote(place)
            | CredentialError::BadChars(place)
            | CredentialError::TooLong(place) => place.source,
        }
    }
}

/// The request's credential, if any: the Authorization header first, then the `query_param`
/// parameter of `query`, then the `cookie_name` cookie of `cookie_headers` (a stale cookie
/// must not override a token given explicitly). An empty `query_param` or `cookie_name` turns
/// that source off. The first source present decides: if its token is malformed, that is the
/// error, without looking further.
pub fn extract<'a>(
    authorization: Option<&'a [u8]>,
    cookie_headers: &[&'a [u8]],
    query: &'a str,
    query_param: &str,
    cookie_name: &str,
) -> Result<Option<Credential<'a>>, CredentialError> {
    if let Some(value) = authorization {
        return from_header(value).map(Some);
    }
    if !query_param.is_empty() {
        if let Some(token) = from_query(query, query_param)? {
            return Ok(Some(token));
        }
    }
    if !cookie_name.is_empty() {
        return from_cookies(cookie_headers, cookie_name);
    }
    Ok(None)
}

/// `Bearer <token>`: scheme case-insensitive, one or more spaces, an RFC 6750 b64token.
fn from_header(value: &[u8]) -> Result<Credential<'_>, CredentialError> {
    let value = std::str::from_utf8(value).map_err(|_| CredentialError::HeaderNotUtf8)?;
    // Field values exclude surrounding whitespace (RFC 9110 §5.5); not every parser trims it.
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() {
        return Err(CredentialError::Empty(Place::header()));
    }
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(CredentialError::NotBearer);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(CredentialError::BearerWithoutToken);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(CredentialError::TooLong(Place::header()));
    }
    if !is_b64token(token) {
        return Err(CredentialError::MalformedBearer);
    }
    Ok(Credential {
        token: Cow::Borrowed(token),
        source: CredentialSource::Header,
    })
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// The first `name` parameter of `query`. The whole query is decoded, as `query::first` does,
/// so a malformed query is an error whichever parameter is malformed.
fn from_query<'a>(query: &'a str, name: &str) -> Result<Option<Credential<'a>>, CredentialError> {
    let mut found = None;
    for pair in query::pairs(query) {
        // QueryError's text quotes the parameter name, which might be a stray token: not
        // repeated.
        let (n, v) = pair.map_err(|e| match e {
            QueryError::ParamUtf8 { .. } | QueryError::Utf8 { .. } => CredentialError::QueryUtf8,
            QueryError::ParamEscape { .. } | QueryError::Escape { .. } => {
                CredentialError::QueryEscape
            }
        })?;
        if found.is_none() && n == name {
            found = Some(v);
        }
    }
    let Some(token) = found else {
        return Ok(None);
    };
    let place = || Place::query(name);
    check_token(&token, place)?;
    Ok(Some(Credential {
        token,
        source: CredentialSource::Query,
    }))
}

/// The first cookie called `name` across the `Cookie` headers, in order.
fn from_cookies<'a>(
    headers: &[&'a [u8]],
    name: &str,
) -> Result<Option<Credential<'a>>, CredentialError> {
    let Some(raw) = headers.iter().find_map(|h| find_cookie(h, name.as_bytes())) else {
        return Ok(None);
    };
    let place = || Place::cookie(name);
    let value = unquote(raw).ok_or_else(|| CredentialError::UnterminatedQuote(place()))?;
    check_token_bytes(value, place)?;
    // Visible ASCII is UTF-8, so this only fails if check_token_bytes is wrong.
    let token = std::str::from_utf8(value).map_err(|_| CredentialError::BadChars(place()))?;
    Ok(Some(Credential {
        token: Cow::Borrowed(token),
        source: CredentialSource::Cookie,
    }))
}

/// The raw value of the first `name=value` pair of one `Cookie` header (RFC 6265 §5.4:
/// pairs split on ';', the first '=' splits name and value, surrounding whitespace ignored).
/// Works on bytes: another cookie's non-UTF-8 value is none of our business.
fn find_cookie<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (n, v) = (pair.get(..eq)?, pair.get(eq + 1..)?);
        (trim_ows(n) == name).then(|| trim_ows(v))
    })
}

/// `"value"` → `value`; unquoted values as they are; None for an unterminated quote.
fn unquote(value: &[u8]) -> Option<&[u8]> {
    match value.strip_prefix(b"\"") {
        Some(rest) => rest.strip_suffix(b"\""),
        None => Some(value),
    }
}

/// Strips spaces and tabs at both ends.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// The rules every token follows: non-empty, at most [`MAX_TOKEN_LEN`] bytes, visible ASCII.
fn check_token(token: &str, place: impl Fn() -> Place) -> Result<(), CredentialError> {
    check_token_bytes(token.as_bytes(), place)
}

/// [`check_token`] on bytes.
fn check_token_bytes(token: &[u8], place: impl Fn() -> Place) -> Result<(), CredentialError> {
    if token.is_empty() {
        return Err(CredentialError::Empty(place()));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(CredentialError::TooLong(place()));
    }
    if !token.iter().all(|b| b.is_ascii_graphic()) {
        return Err(CredentialError::BadChars(place()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
