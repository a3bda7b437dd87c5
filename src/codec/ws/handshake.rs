//! The WebSocket opening handshake (RFC 6455 §4.2): checking an upgrade request, the
//! `Sec-WebSocket-Accept` key, and the 101 (or 400/426) answer.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::codec::http1::{write_response, write_response_head, Method, Request};

/// The GUID RFC 6455 §1.3 appends to the client's key before hashing.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version RFC 6455 defines; also what a 426 answer advertises.
pub const VERSION: &str = "13";

/// An upgrade request that may be accepted: what the 101 answer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    /// Value for `Sec-WebSocket-Accept`.
    pub accept: String,
    /// The first subprotocol the client offered (in the client's order) that the server
    /// supports; `None` when the client offered none or none matched, in which case the 101
    /// must not carry `Sec-WebSocket-Protocol` (RFC 6455 §4.2.2).
    pub protocol: Option<String>,
}

/// Why an upgrade request is refused. [`HandshakeError::status`] is the status to answer with
/// (see [`write_refusal`]); `Display` says what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// RFC 6455 §4.1: the opening handshake is a GET.
    #[error("a WebSocket upgrade must be a GET request")]
    NotGet,
    /// RFC 6455 §4.1: HTTP/1.1 or higher; HTTP/1.0 has no Upgrade mechanism.
    #[error("a WebSocket upgrade needs HTTP/1.1")]
    NotHttp11,
    /// No `Upgrade` field with the token `websocket`.
    #[error("missing 'Upgrade: websocket' header")]
    NoUpgradeWebsocket,
    /// No `Connection` field with the token `upgrade`.
    #[error("missing 'Connection: Upgrade' header")]
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Version` missing or not 13; answered 426 with `Sec-WebSocket-Version: 13`
    /// so the client can retry with a version we speak (RFC 6455 §4.2.2).
    #[error("unsupported or missing Sec-WebSocket-Version (supported: 13)")]
    UnsupportedVersion,
    /// No `Sec-WebSocket-Key` field.
    #[error("missing Sec-WebSocket-Key header")]
    MissingKey,
    /// More than one `Sec-WebSocket-Key` field: which one the accept key answers is ambiguous.
    #[error("more than one Sec-WebSocket-Key header")]
    DuplicateKey,
    /// The key is not base64 of exactly 16 bytes (RFC 6455 §4.1, item 7).
    #[error("Sec-WebSocket-Key is not the base64 encoding of 16 bytes")]
    BadKey,
}

impl HandshakeError {
    /// 426 for a version we do not speak, 400 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::UnsupportedVersion => 426,
            _ => 400,
        }
    }
}

/// Checks that `req` is a WebSocket upgrade we can accept and computes the answer's fields.
/// `supported_protocols` are the subprotocols the server speaks; the client's order decides
/// which one is chosen. Origin checks and authentication are the caller's business.
pub fn check_upgrade(
    req: &Request,
    supported_protocols: &[&str],
) -> Result<Upgrade, HandshakeError> {
    if req.method != Method::Get {
        return Err(HandshakeError::NotGet);
    }
    if req.minor_version != 1 {
        return Err(HandshakeError::NotHttp11);
    }
    if !has_token(req, "upgrade", b"websocket") {
        return Err(HandshakeError::NoUpgradeWebsocket);
    }
    if !has_token(req, "connection", b"upgrade") {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    // Token match, not equality: a client may list the versions it speaks.
    if !tokens(req, "sec-websocket-version").any(|t| t == VERSION.as_bytes()) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let mut keys = req.headers.iter().filter(|(n, _)| n == "sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (None, _) => return Err(HandshakeError::MissingKey),
        (Some(_), Some(_)) => return Err(HandshakeError::DuplicateKey),
        (Some((_, key)), None) => key,
    };
    let key = std::str::from_utf8(key).map_err(|_| HandshakeError::BadKey)?;
    if !is_valid_key(key) {
        return Err(HandshakeError::BadKey);
    }
    // Subprotocol names are case-sensitive tokens (RFC 6455 §4.1, item 10).
    let protocol = tokens(req, "sec-websocket-protocol").find_map(|offered| {
        supported_protocols
            .iter()
            .find(|p| p.as_bytes() == offered)
            .map(|p| (*p).to_owned())
    });
    Ok(Upgrade {
        accept: accept_key(key),
        protocol,
    })
}

/// base64(SHA-1(key + GUID)): the `Sec-WebSocket-Accept` value for a client's key.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// Writes the `101 Switching Protocols` head accepting an upgrade. `extra_headers` are added as
/// given (CR and LF in them are replaced, as in every response this crate writes). After this
/// head the connection speaks WebSocket frames only.
pub fn write_switching_protocols(
    out: &mut Vec<u8>,
    accept: &str,
    protocol: Option<&str>,
    extra_headers: &[(&str, &str)],
) {
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(4 + extra_headers.len());
    headers.push(("Upgrade", "websocket"));
    headers.push(("Connection", "Upgrade"));
    headers.push(("Sec-WebSocket-Accept", accept));
    if let Some(p) = protocol {
        headers.push(("Sec-WebSocket-Protocol", p));
    }
    headers.extend_from_slice(extra_headers);
    // 101 is bodiless: no Content-Type or Content-Length; keep_alive=true adds no
    // `Connection: close` (the connection lives on as a WebSocket).
    write_response_head(out, 101, "", &headers, 0, true);
}

/// Writes the refusal for `err`: its status, the reason as a `text/plain` body, and for 426 the
/// `Sec-WebSocket-Version: 13` field RFC 6455 §4.2.2 requires. Always `Connection: close`: the
/// client must start over with a new handshake anyway.
pub fn write_refusal(out: &mut Vec<u8>, err: &HandshakeError) {
    let body = format!("{err}\n");
    let version: &[(&str, &str)] = if err.status() == 426 {
        &[("Sec-WebSocket-Version", VERSION)]
    } else {
        &[]
    };
    write_response(
        out,
        err.status(),
        "text/plain; charset=utf-8",
        version,
        body.as_bytes(),
        false,
    );
}

/// 24 characters of canonical base64 decoding to exactly 16 bytes.
fn is_valid_key(key: &str) -> bool {
    // 16 bytes are always 24 characters with "==" padding; checking the length first also
    // keeps a long value from being decoded at all.
    let mut raw = [0u8; 18];
    key.len() == 24 && matches!(STANDARD.decode_slice(key, &mut raw), Ok(16))
}

/// Whether any `name` field lists `token`, compared case-insensitively (Upgrade and Connection
/// values are case-insensitive tokens, RFC 9110 §7.6.1 and §7.8).
fn has_token(req: &Request, name: &str, token: &[u8]) -> bool {
    tokens(req, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// The comma-separated elements of every `name` field, in order, trimmed, empty ones skipped
/// (RFC 9110 §5.6.1: recipients must accept empty list elements).
fn tokens<'r>(req: &'r Request, name: &'r str) -> impl Iterator<Item = &'r [u8]> + 'r {
    req.headers
        .iter()
        .filter(move |(n, _)| n == name)
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests;
