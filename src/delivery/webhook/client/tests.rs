//! The client against real sockets on a glommio executor: keep-alive reuse, chunked and
//! `Connection: close` responses, the attempt timeout, the keep-alive race, the SSRF guard
//! (refusing before any connect), and HTTPS with a private CA.
//!
//! Timeouts are generous (seconds) except where the timeout is the point: the machine running
//! these may be loaded.

mod certs;
mod server;

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;
use crate::policy::ssrf::Cidr;
use server::{Reply, TestServer};

const GENEROUS: Duration = Duration::from_secs(10);

fn config(allow: &[&str], extra_root_pem: Option<PathBuf>) -> ClientConfig {
    ClientConfig {
        allow: AddressPolicy::new(allow.iter().map(|c| c.parse::<Cidr>().unwrap()).collect()),
        connect_timeout: GENEROUS,
        idle_timeout: Duration::from_secs(60),
        max_idle_per_origin: 4,
        max_connections_per_origin: 64,
        extra_root_pem,
        max_body_kept: 4096,
    }
}

fn loopback_client() -> HttpClient {
    HttpClient::new(config(&["127.0.0.0/8"], None)).unwrap()
}

fn run<T>(f: impl Future<Output = T>) -> T {
    glommio::LocalExecutor::default().run(f)
}

async fn post(client: &HttpClient, url: &str, timeout: Duration) -> Result<Response, AttemptError> {
    let url = Url::parse(url).unwrap();
    let headers = [("Content-Type", "application/json")];
    let req = OutboundRequest {
        method: "POST",
        url: &url,
        headers: &headers,
        body: b"{\"n\":1}",
    };
    client.send(&req, timeout).await
}

#[test]
fn ten_sends_share_one_kept_connection() {
    let server = TestServer::start(Reply::KeepAlive);
    let url = format!("http://{}/hook", server.addr);
    run(async {
        let client = loopback_client();
        for i in 1..=10 {
            let r = post(&client, &url, GENEROUS).await.unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(&r.body[..], format!("request {i} /hook 7").as_bytes());
            assert!(r.reusable);
        }
    });
    assert_eq!((server.accepted(), server.requests()), (1, 10));
}

#[test]
fn chunked_response_is_read_and_the_connection_kept() {
    let server = TestServer::start(Reply::Chunked);
    let url = format!("http://{}/", server.addr);
    run(async {
        let client = loopback_client();
        for _ in 0..3 {
            let r = post(&client, &url, GENEROUS).await.unwrap();
            assert_eq!(&r.body[..], b"hello world");
        }
    });
    assert_eq!(server.accepted(), 1);
}

#[test]
fn connection_close_is_not_reused() {
    let server = TestServer::start(Reply::Close);
    let url = format!("http://{}/", server.addr);
    run(async {
        let client = loopback_client();
        for _ in 0..3 {
            let r = post(&client, &url, GENEROUS).await.unwrap();
            assert!(!r.reusable);
            assert_eq!(&r.body[..], b"ok");
        }
    });
    assert_eq!(server.accepted(), 3);
}

#[test]
fn a_server_that_never_answers_times_out_within_the_bound() {
    let server = TestServer::start(Reply::Silent);
    let url = format!("http://{}/", server.addr);
    let bound = Duration::from_millis(300);
    let (result, took) = run(async {
        let client = loopback_client();
        let start = Instant::now();
        let result = post(&client, &url, bound).await;
        (result, start.elapsed())
    });
    let err = result.unwrap_err();
    assert!(
        matches!(err, AttemptError::Timeout(d) if d == bound),
        "{err}"
    );
    assert_eq!(err.to_string(), "timed out after 300 ms");
    assert!(took >= bound, "{took:?}");
    assert!(took < bound + Duration::from_secs(3), "{took:?}");
}

#[test]
fn a_kept_connection_closed_while_idle_is_replaced_transparently() {
    let server = TestServer::start(Reply::CloseWhenIdle);
    let url = format!("http://{}/", server.addr);
    run(async {
        let client = loopback_client();
        post(&client, &url, GENEROUS).await.unwrap();
        // Wait until the server has closed the connection the client kept.
        let start = Instant::now();
        while server.closed() < 1 {
            assert!(start.elapsed() < GENEROUS, "server never closed");
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        let r = post(&client, &url, GENEROUS).await.unwrap();
        assert_eq!(r.status, 200);
    });
    assert_eq!((server.accepted(), server.requests()), (2, 2));
}

#[test]
fn connect_refused_names_the_address() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = run(async {
        let client = loopback_client();
        post(&client, &format!("http://{addr}/"), GENEROUS)
            .await
            .unwrap_err()
    });
    assert_eq!(err.to_string(), format!("connect to {addr} refused"));
}

/// Send to each URL with the default policy (nothing allowed): refused, and quickly (a connect
/// to 10.0.0.1 would hang until the timeout).
fn assert_refused_before_connect(urls: &[String]) {
    run(async {
        let client = HttpClient::new(config(&[], None)).unwrap();
        for url in urls {
            let start = Instant::now();
            let err = post(&client, url, GENEROUS).await.unwrap_err();
            assert!(matches!(err, AttemptError::Forbidden(_)), "{url}: {err}");
            assert!(start.elapsed() < Duration::from_secs(5), "{url} took long");
        }
    });
}

#[test]
fn loopback_is_refused_and_nothing_reaches_the_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_refused_before_connect(&[
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://localhost:{port}/"),
        format!("https://localhost:{port}/"),
    ]);
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a connection reached the listener: {accepted:?}"
    );
}

#[test]
fn metadata_and_private_addresses_are_refused() {
    assert_refused_before_connect(&[
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://[fd00:ec2::254]/".to_owned(),
    ]);
    let err = run(async {
        let client = HttpClient::new(config(&[], None)).unwrap();
        post(&client, "http://169.254.169.254/", GENEROUS)
            .await
            .unwrap_err()
    });
    assert_eq!(
        err.to_string(),
        "refused to connect: 169.254.169.254 is link-local (cloud metadata)"
    );
}

#[test]
fn loopback_is_reached_when_allowed() {
    let server = TestServer::start(Reply::KeepAlive);
    let url = format!("http://127.0.0.1:{}/", server.addr.port());
    run(async {
        let client = HttpClient::new(config(&["127.0.0.1/32"], None)).unwrap();
        assert_eq!(post(&client, &url, GENEROUS).await.unwrap().status, 200);
    });
    assert_eq!(server.accepted(), 1);
}

#[test]
fn https_with_the_private_ca_trusted() {
    let certs = certs::make("trusted");
    let server = certs::tls_server(&certs, Reply::KeepAlive);
    let port = server.addr.port();
    run(async {
        let client = HttpClient::new(config(&["127.0.0.0/8"], Some(certs.ca.clone()))).unwrap();
        // By name (SNI, DNS SAN) twice over one connection, then by IP literal (IP SAN).
        for _ in 0..2 {
            let r = post(&client, &format!("https://localhost:{port}/tls"), GENEROUS).await;
            assert_eq!(r.unwrap().status, 200);
        }
        let r = post(&client, &format!("https://127.0.0.1:{port}/ip"), GENEROUS).await;
        assert_eq!(r.unwrap().status, 200);
    });
    assert_eq!((server.accepted(), server.requests()), (2, 3));
}

#[test]
fn https_without_the_ca_fails_the_handshake() {
    let certs = certs::make("untrusted");
    let server = certs::tls_server(&certs, Reply::KeepAlive);
    let err = run(async {
        let client = loopback_client();
        let url = format!("https://localhost:{}/", server.addr.port());
        post(&client, &url, GENEROUS).await.unwrap_err()
    });
    assert!(matches!(err, AttemptError::Tls(_)), "{err}");
    assert_eq!(server.requests(), 0);
}

#[test]
fn setup_errors_name_the_file() {
    let missing = PathBuf::from("/nonexistent/ca.pem");
    let err = HttpClient::new(config(&[], Some(missing))).err().unwrap();
    assert!(err
        .to_string()
        .starts_with("reading extra root certificates from /nonexistent/ca.pem"));
    let empty = std::env::temp_dir().join(format!("sluicegate-empty-{}.pem", std::process::id()));
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let err = HttpClient::new(config(&[], Some(empty.clone())))
        .err()
        .unwrap();
    assert!(matches!(err, ClientSetupError::NoExtraRoots(_)), "{err}");
    let _ = std::fs::remove_file(empty);
}

#[test]
fn concurrent_sends_to_one_origin_share_a_bounded_number_of_connections() {
    let server = TestServer::start(Reply::KeepAlive);
    let url = format!("http://{}/many", server.addr);
    run(async {
        let mut cfg = config(&["127.0.0.0/8"], None);
        cfg.max_connections_per_origin = 2;
        let client = std::rc::Rc::new(HttpClient::new(cfg).unwrap());
        let sends: Vec<_> = (0..20)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                glommio::spawn_local(async move { post(&client, &url, GENEROUS).await })
            })
            .collect();
        for s in sends {
            assert_eq!(s.await.unwrap().status, 200);
        }
    });
    assert_eq!(server.requests(), 20);
    assert!(
        server.accepted() <= 2,
        "{} connections for a cap of 2",
        server.accepted()
    );
}
