//! Fuzz the WebSocket upgrade check on whatever the HTTP/1.1 decoder accepts: never panic, an
//! accepted upgrade answers with a well-formed accept key and a supported subprotocol, a
//! refused one with 400 or 426.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluicegate::codec::http1::{Limits, RequestDecoder};
use sluicegate::codec::ws::{check_upgrade, write_refusal, write_switching_protocols};

const SUPPORTED: &[&str] = &["v1.sluicegate", "chat"];

fuzz_target!(|data: &[u8]| {
    let mut dec = RequestDecoder::new(Limits {
        max_head_bytes: 1024,
        max_headers: 16,
        max_uri_bytes: 128,
        max_body_bytes: 64,
    });
    let mut buf = BytesMut::from(data);
    while let Ok(Some(req)) = dec.decode(&mut buf) {
        let mut out = Vec::new();
        match check_upgrade(&req, SUPPORTED) {
            Ok(up) => {
                assert_eq!(up.accept.len(), 28);
                if let Some(p) = &up.protocol {
                    assert!(SUPPORTED.contains(&p.as_str()));
                }
                write_switching_protocols(&mut out, &up.accept, up.protocol.as_deref(), &[]);
                assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
            }
            Err(e) => {
                assert!(matches!(e.status(), 400 | 426));
                write_refusal(&mut out, &e);
            }
        }
        assert!(out.ends_with(b"\r\n\r\n") || out.ends_with(b"\n"));
    }
});
