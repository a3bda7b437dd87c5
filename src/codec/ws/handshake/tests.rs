//! Unit tests for the opening handshake: the RFC 6455 accept-key example, every refusal and
//! its status, subprotocol choice, and the bytes of the 101 and refusal answers.

use bytes::BytesMut;

use super::*;
use crate::codec::http1::{Limits, RequestDecoder};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Decodes one request with the crate's own HTTP/1.1 decoder.
fn request(head: &str) -> Request {
    let mut buf = BytesMut::from(head.as_bytes());
    RequestDecoder::new(Limits::default())
        .decode(&mut buf)
        .expect("valid HTTP")
        .expect("complete request")
}

/// A valid upgrade request with `extra` header lines (each ending in CRLF) appended, and any
/// default line whose name starts one of `drop` left out.
fn upgrade_with(drop: &[&str], extra: &str) -> Request {
    let defaults = [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        &format!("Sec-WebSocket-Key: {KEY}"),
    ];
    let mut head = String::from("GET /ws?topic=a HTTP/1.1\r\nHost: example.com\r\n");
    for line in defaults {
        if !drop.iter().any(|d| line.starts_with(d)) {
            head.push_str(line);
            head.push_str("\r\n");
        }
    }
    head.push_str(extra);
    head.push_str("\r\n");
    request(&head)
}

fn refusal(req: &Request) -> HandshakeError {
    check_upgrade(req, &["v1.sluicegate"]).expect_err("refused")
}

#[test]
fn accept_key_matches_rfc_6455_example() {
    assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn accepts_a_plain_upgrade() {
    let up = check_upgrade(&upgrade_with(&[], ""), &[]).unwrap();
    assert_eq!(up.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(up.protocol, None);
}

#[test]
fn upgrade_and_connection_are_case_insensitive_token_lists() {
    let req = upgrade_with(
        &["Upgrade", "Connection"],
        "upgrade: h2c, WebSocket\r\nConnection: keep-alive\r\nconnection: , UPGRADE\r\n",
    );
    assert!(check_upgrade(&req, &[]).is_ok());
}

#[test]
fn chooses_the_first_supported_protocol_in_the_clients_order() {
    let req = upgrade_with(
        &[],
        "Sec-WebSocket-Protocol: chat, v2.sluicegate\r\nSec-WebSocket-Protocol: v1.sluicegate\r\n",
    );
    let up = check_upgrade(&req, &["v1.sluicegate", "v2.sluicegate"]).unwrap();
    assert_eq!(up.protocol.as_deref(), Some("v2.sluicegate"));
}

#[test]
fn protocol_names_are_case_sensitive_and_unmatched_means_none() {
    let req = upgrade_with(&[], "Sec-WebSocket-Protocol: V1.Sluicegate, chat\r\n");
    let up = check_upgrade(&req, &["v1.sluicegate"]).unwrap();
    assert_eq!(up.protocol, None);
}

#[test]
fn version_may_be_listed_among_others() {
    let req = upgrade_with(
        &["Sec-WebSocket-Version"],
        "Sec-WebSocket-Version: 8, 13\r\n",
    );
    assert!(check_upgrade(&req, &[]).is_ok());
}

#[test]
fn refuses_other_methods_with_400() {
    let req = request(&format!(
        "POST /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\nContent-Length: 0\r\n\r\n"
    ));
    assert_eq!(refusal(&req), HandshakeError::NotGet);
    assert_eq!(HandshakeError::NotGet.status(), 400);
}

#[test]
fn refuses_http_1_0_with_400() {
    let req = request(&format!(
        "GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    ));
    let err = refusal(&req);
    assert_eq!(err, HandshakeError::NotHttp11);
    assert_eq!(err.status(), 400);
}

#[test]
fn refuses_missing_or_other_upgrade_with_400() {
    for req in [
        upgrade_with(&["Upgrade"], ""),
        upgrade_with(&["Upgrade"], "Upgrade: h2c\r\n"),
        upgrade_with(&["Upgrade"], "Upgrade: websocket2\r\n"),
    ] {
        let err = refusal(&req);
        assert_eq!(err, HandshakeError::NoUpgradeWebsocket);
        assert_eq!(err.status(), 400);
    }
}

#[test]
fn refuses_missing_connection_upgrade_with_400() {
    for req in [
        upgrade_with(&["Connection"], ""),
        upgrade_with(&["Connection"], "Connection: keep-alive\r\n"),
        upgrade_with(&["Connection"], "Connection: upgraded\r\n"),
    ] {
        let err = refusal(&req);
        assert_eq!(err, HandshakeError::NoConnectionUpgrade);
        assert_eq!(err.status(), 400);
    }
}

#[test]
fn refuses_missing_or_other_version_with_426() {
    for req in [
        upgrade_with(&["Sec-WebSocket-Version"], ""),
        upgrade_with(&["Sec-WebSocket-Version"], "Sec-WebSocket-Version: 8\r\n"),
        upgrade_with(&["Sec-WebSocket-Version"], "Sec-WebSocket-Version: 130\r\n"),
    ] {
        let err = refusal(&req);
        assert_eq!(err, HandshakeError::UnsupportedVersion);
        assert_eq!(err.status(), 426);
    }
}

#[test]
fn refuses_missing_duplicate_or_bad_keys_with_400() {
    let cases = [
        (
            upgrade_with(&["Sec-WebSocket-Key"], ""),
            HandshakeError::MissingKey,
        ),
        (
            upgrade_with(&[], &format!("Sec-WebSocket-Key: {KEY}\r\n")),
            HandshakeError::DuplicateKey,
        ),
        // base64 of 15 bytes, of 17 bytes, not base64, non-canonical trailing bits, no padding.
        (key("dGhlIHNhbXBsZSBub25j"), HandshakeError::BadKey),
        (key("dGhlIHNhbXBsZSBub25jZSE="), HandshakeError::BadKey),
        (key("dGhlIHNhbXBsZSBub25jZ!=="), HandshakeError::BadKey),
        (key("dGhlIHNhbXBsZSBub25jZR=="), HandshakeError::BadKey),
        (key("dGhlIHNhbXBsZSBub25jZQ"), HandshakeError::BadKey),
    ];
    for (req, want) in cases {
        let err = refusal(&req);
        assert_eq!(err, want, "{:?}", req.header_str("sec-websocket-key"));
        assert_eq!(err.status(), 400);
    }
}

fn key(value: &str) -> Request {
    upgrade_with(
        &["Sec-WebSocket-Key"],
        &format!("Sec-WebSocket-Key: {value}\r\n"),
    )
}

#[test]
fn non_utf8_key_is_bad() {
    let mut req = upgrade_with(&[], "");
    for (name, value) in &mut req.headers {
        if name == "sec-websocket-key" {
            value[0] = 0xff;
        }
    }
    assert_eq!(refusal(&req), HandshakeError::BadKey);
}

#[test]
fn writes_the_101_head() {
    let mut out = Vec::new();
    write_switching_protocols(
        &mut out,
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        Some("v1.sluicegate"),
        &[("X-Shard", "1\r\nInjected: yes")],
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
         Sec-WebSocket-Protocol: v1.sluicegate\r\nX-Shard: 1  Injected: yes\r\n\r\n"
    );
}

#[test]
fn writes_the_101_head_without_protocol() {
    let mut out = Vec::new();
    write_switching_protocols(&mut out, "abc=", None, &[]);
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("Sec-WebSocket-Protocol"));
    assert!(text.ends_with("Sec-WebSocket-Accept: abc=\r\n\r\n"));
}

#[test]
fn refusal_426_names_the_supported_version() {
    let mut out = Vec::new();
    write_refusal(&mut out, &HandshakeError::UnsupportedVersion);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 426 "), "{text}");
    assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    assert!(text.ends_with("(supported: 13)\n"), "{text}");
}

#[test]
fn refusal_400_carries_the_reason() {
    let mut out = Vec::new();
    write_refusal(&mut out, &HandshakeError::BadKey);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(!text.contains("Sec-WebSocket-Version"), "{text}");
    assert!(text.ends_with("Sec-WebSocket-Key is not the base64 encoding of 16 bytes\n"));
}
