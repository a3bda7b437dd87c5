//! WebSub hub requests: decoding an `application/x-www-form-urlencoded` body into pairs, and
//! reading the subscribe/unsubscribe request (W3C WebSub §5.1) out of them.
//!
//! Only the shape of the request is checked here. Whether the callback and topic URLs are
//! acceptable (scheme, address, a topic this hub serves) is the webhook engine's decision, and
//! so is WebSub's "reject `hub.secret` over plain HTTP": both need configuration this codec
//! does not have.

use std::fmt;

use super::query::{self, quote, QueryError};

/// Largest form body decoded. A hub request is two URLs and a few short fields; the caller caps
/// the body it reads too, this bound is for callers that forget.
pub const MAX_FORM_BODY: usize = 16 * 1024;

/// Most fields decoded from one body. WebSub needs five; extension parameters get some room,
/// but a body of `&a&a&a...` does not get to build a vector of thousands of strings.
pub const MAX_FORM_FIELDS: usize = 64;

/// WebSub §5.1: "This parameter MUST be less than 200 bytes in length."
pub const MAX_SECRET_LEN: usize = 199;

/// What is wrong with a form body; `Display` is written for the 400 body.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum FormError {
    #[error("form body is {len} bytes; the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("form body has more than {max} fields")]
    TooManyFields { max: usize },
    #[error("form field {name:?} has an invalid percent-escape (expected % and two hex digits)")]
    Escape { name: String },
    #[error("form field {name:?} is not valid UTF-8")]
    Utf8 { name: String },
}

/// Decode a form body into `(name, value)` pairs, in order: `&`-separated, `+` is a space,
/// `%XX` escapes, UTF-8 required (before and after decoding). Empty segments are skipped; a
/// segment without `=` is a name with an empty value.
pub fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    if body.len() > MAX_FORM_BODY {
        return Err(FormError::TooLarge {
            len: body.len(),
            max: MAX_FORM_BODY,
        });
    }
    let text = std::str::from_utf8(body).map_err(|e| FormError::Utf8 {
        name: raw_name_at(body, e.valid_up_to()),
    })?;
    let mut out = Vec::new();
    // The query-string decoder is the same grammar; only the wording of its errors differs.
    for pair in query::pairs(text) {
        if out.len() == MAX_FORM_FIELDS {
            return Err(FormError::TooManyFields {
                max: MAX_FORM_FIELDS,
            });
        }
        let (name, value) = pair.map_err(|e| match e {
            QueryError::ParamEscape { name } | QueryError::Escape { text: name } => {
                FormError::Escape { name }
            }
            QueryError::ParamUtf8 { name } | QueryError::Utf8 { text: name } => {
                FormError::Utf8 { name }
            }
        })?;
        out.push((name.into_owned(), value.into_owned()));
    }
    Ok(out)
}

/// The (undecoded, lossily shown) name of the field holding byte `at`, for a body that is not
/// UTF-8 before decoding.
fn raw_name_at(body: &[u8], at: usize) -> String {
    let (before, after) = body.split_at(at.min(body.len()));
    let start = before.iter().rposition(|&b| b == b'&').map_or(0, |i| i + 1);
    let end = at + after.iter().position(|&b| b == b'&').unwrap_or(after.len());
    let segment = body.get(start..end).unwrap_or_default();
    let name = segment.split(|&b| b == b'=').next().unwrap_or_default();
    quote(&String::from_utf8_lossy(name))
}

/// `hub.mode`: what the subscriber asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubMode {
    Subscribe,
    Unsubscribe,
}

impl HubMode {
    /// The spec's literal, as sent back in the verification request's `hub.mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            HubMode::Subscribe => "subscribe",
            HubMode::Unsubscribe => "unsubscribe",
        }
    }
}

/// A well-formed subscribe or unsubscribe request (the URLs are not checked yet).
#[derive(Clone, PartialEq, Eq)]
pub struct HubRequest {
    pub mode: HubMode,
    /// `hub.topic`, non-empty, as sent.
    pub topic: String,
    /// `hub.callback`, non-empty, as sent.
    pub callback: String,
    /// `hub.lease_seconds`: the lease the subscriber asks for; the hub chooses the real one.
    pub lease_seconds: Option<u64>,
    /// `hub.secret`: the HMAC key for `X-Hub-Signature`, 1 to 199 bytes.
    pub secret: Option<String>,
}

// By hand so the secret never reaches a log line through `{:?}`.
impl fmt::Debug for HubRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubRequest")
            .field("mode", &self.mode)
            .field("topic", &self.topic)
            .field("callback", &self.callback)
            .field("lease_seconds", &self.lease_seconds)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What is wrong with a hub request; `Display` is written for the 400 body.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum HubRequestError {
    #[error(transparent)]
    Form(#[from] FormError),
    #[error("{field} is required")]
    Missing { field: &'static str },
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} appears more than once")]
    Duplicate { field: &'static str },
    #[error("hub.mode {mode:?} is not \"subscribe\" or \"unsubscribe\"")]
    BadMode { mode: String },
    #[error(
        "hub.lease_seconds {value:?} is not a number of seconds (decimal digits, at most 2^64-1)"
    )]
    BadLease { value: String },
    #[error("hub.secret is {len} bytes; WebSub requires fewer than 200")]
    SecretTooLong { len: usize },
}

const MODE: &str = "hub.mode";
const TOPIC: &str = "hub.topic";
const CALLBACK: &str = "hub.callback";
const LEASE: &str = "hub.lease_seconds";
const SECRET: &str = "hub.secret";

/// Read a WebSub subscribe/unsubscribe request from its form body. Any of the five `hub.*`
/// fields sent twice is an error (which one would we honour?); other fields are ignored, repeated
/// or not, since the spec lets subscribers add extension parameters.
pub fn parse_hub_request(body: &[u8]) -> Result<HubRequest, HubRequestError> {
    let mut mode = None;
    let mut topic = None;
    let mut callback = None;
    let mut lease = None;
    let mut secret = None;
    for (name, value) in form_pairs(body)? {
        let (field, slot) = match name.as_str() {
            MODE => (MODE, &mut mode),
            TOPIC => (TOPIC, &mut topic),
            CALLBACK => (CALLBACK, &mut callback),
            LEASE => (LEASE, &mut lease),
            SECRET => (SECRET, &mut secret),
            _ => continue,
        };
        if slot.is_some() {
            return Err(HubRequestError::Duplicate { field });
        }
        *slot = Some(value);
    }

    let mode = match required(MODE, mode)?.as_str() {
        "subscribe" => HubMode::Subscribe,
        "unsubscribe" => HubMode::Unsubscribe,
        other => return Err(HubRequestError::BadMode { mode: quote(other) }),
    };
    let topic = required(TOPIC, topic)?;
    let callback = required(CALLBACK, callback)?;
    let lease_seconds = lease.map(|v| parse_lease(&v)).transpose()?;
    let secret = match secret {
        // An empty secret would sign every delivery with an empty HMAC key: a signature that
        // proves nothing. Refuse it rather than let the subscriber believe it is protected.
        Some(s) if s.is_empty() => return Err(HubRequestError::Empty { field: SECRET }),
        Some(s) if s.len() > MAX_SECRET_LEN => {
            return Err(HubRequestError::SecretTooLong { len: s.len() })
        }
        other => other,
    };
    Ok(HubRequest {
        mode,
        topic,
        callback,
        lease_seconds,
        secret,
    })
}

fn required(field: &'static str, value: Option<String>) -> Result<String, HubRequestError> {
    match value {
        None => Err(HubRequestError::Missing { field }),
        Some(v) if v.is_empty() => Err(HubRequestError::Empty { field }),
        Some(v) => Ok(v),
    }
}

/// Decimal digits only: `u64::from_str` would also take a leading `+`, which no subscriber
/// means to send.
fn parse_lease(value: &str) -> Result<u64, HubRequestError> {
    let bad = || HubRequestError::BadLease {
        value: quote(value),
    };
    if value.is_empty() {
        return Err(HubRequestError::Empty { field: LEASE });
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

#[cfg(test)]
mod tests;
