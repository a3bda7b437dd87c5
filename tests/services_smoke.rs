//! Smoke test of the real test services started by `tests/services.sh`: Redis answers PING and
//! the Kafka broker (tansu) answers an ApiVersions request. Raw sockets only, so a failure here
//! points at the service, not at a client library.
//!
//! These tests REQUIRE `SLUICEGATE_TEST_REDIS_URL` and `SLUICEGATE_TEST_KAFKA` (run through
//! `tests/run-all.sh`, or `tests/services.sh start` and export `tests/services.sh env`); a missing
//! variable is a failure, never a silent skip.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(5);

fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: these tests need the real services. Run `tests/run-all.sh`, or \
             `tests/services.sh start` and export the lines printed by `tests/services.sh env`."
        ),
    }
}

fn connect(host_port: &str) -> TcpStream {
    let addr = host_port
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("cannot resolve {host_port}: {e}"))
        .next()
        .unwrap_or_else(|| panic!("{host_port} resolves to no address"));
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("cannot connect to {host_port}: {e}"));
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("set read timeout");
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .expect("set write timeout");
    stream
}

/// `redis://host:port[/db]` -> `host:port`.
fn redis_host_port(url: &str) -> String {
    let rest = url
        .strip_prefix("redis://")
        .unwrap_or_else(|| panic!("SLUICEGATE_TEST_REDIS_URL must start with redis://, got {url}"));
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.split('/').next().unwrap_or(rest).to_string()
}

#[test]
fn redis_answers_ping() {
    let url = required_env("SLUICEGATE_TEST_REDIS_URL");
    let mut s = connect(&redis_host_port(&url));
    s.write_all(b"*1\r\n$4\r\nPING\r\n").expect("send PING");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64];
    while !buf.ends_with(b"\r\n") {
        let n = s.read(&mut chunk).expect("read PING reply");
        assert!(n > 0, "redis closed the connection; got {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(buf, b"+PONG\r\n");
}

#[test]
fn kafka_answers_api_versions() {
    let addr = required_env("SLUICEGATE_TEST_KAFKA");
    let mut s = connect(&addr);

    // ApiVersions v0 request: api_key=18, api_version=0, correlation_id, client_id (i16 length).
    let correlation_id: i32 = 0x5155_1CE0;
    let client_id = b"sluicegate-smoke";
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&correlation_id.to_be_bytes());
    body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    body.extend_from_slice(client_id);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    s.write_all(&frame).expect("send ApiVersions");

    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("read response size");
    let size = i32::from_be_bytes(size);
    assert!(
        (6..1 << 20).contains(&size),
        "implausible response size {size}"
    );
    let mut resp = vec![0u8; size as usize];
    s.read_exact(&mut resp).expect("read response body");

    let mut corr = [0u8; 4];
    corr.copy_from_slice(&resp[0..4]);
    assert_eq!(i32::from_be_bytes(corr), correlation_id, "correlation id");
    let mut err = [0u8; 2];
    err.copy_from_slice(&resp[4..6]);
    assert_eq!(i16::from_be_bytes(err), 0, "ApiVersions error_code");
    // v0 body: error_code, then an array (i32 count) of (api_key, min, max); a broker must at
    // least list ApiVersions itself.
    assert!(resp.len() >= 10, "response too short for the api array");
    let mut count = [0u8; 4];
    count.copy_from_slice(&resp[6..10]);
    let count = i32::from_be_bytes(count);
    assert!(count > 0, "broker lists no APIs");
    let listed = resp[10..]
        .chunks_exact(6)
        .take(count as usize)
        .any(|e| e[0..2] == 18i16.to_be_bytes());
    assert!(
        listed,
        "ApiVersions (18) missing from the broker's API list"
    );
}
