//! End to end: `POST /webhook-receiver?topic=T` publishes a provider's payload to T. Signed
//! topics take WebSub `X-Hub-Signature` or Standard Webhooks signatures (the signature is the
//! credential); a redelivery with the same `webhook-id` is published once; the payload's
//! `Content-Type` travels as an event header (so `?header.content-type=` filters on it).
mod common;

use base64::Engine as _;
use common::{config_file, http_request, Gateway, SseClient, EVENT_TIMEOUT};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};
use std::process::Command;
use std::time::Duration;

const HUB_SECRET: &str = "hub-secret-1";
/// Standard Webhooks secret: `whsec_` + base64 of the key bytes.
const STD_KEY: &[u8] = b"standard-webhooks-key-0123456789";

fn std_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(STD_KEY)
    )
}

fn gateway() -> Gateway {
    let toml = format!(
        "[[webhooks.receivers]]\ntopic = \"gh\"\nscheme = \"websub\"\nsecret = \"{HUB_SECRET}\"\n\n\
         [[webhooks.receivers]]\ntopic = \"std\"\nscheme = \"standard-webhooks\"\nsecret = \"{}\"\n",
        std_secret()
    );
    Gateway::start(&["--config", &config_file(&toml)])
}

/// `X-Hub-Signature` of `body` with `secret`: `method=<hex HMAC>`.
fn hub_signature<M: Mac + hmac::digest::KeyInit>(
    method: &str,
    secret: &str,
    body: &[u8],
) -> String {
    format!(
        "{method}={}",
        common::hmac_hex::<M>(secret.as_bytes(), body)
    )
}

fn hub_signature_256(body: &[u8]) -> String {
    hub_signature::<Hmac<Sha256>>("sha256", HUB_SECRET, body)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn standard_signature(id: &str, ts: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(STD_KEY).expect("key");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn websub_signed_deliveries_are_published_with_their_content_type_and_bad_ones_refused() {
    let gw = gateway();
    let mut sub = SseClient::connect(
        gw.addr(),
        "/topics/gh/events?header.content-type=application/json",
        &[],
    );
    let body = br#"{"action":"opened","number":7}"#;
    let sig = hub_signature_256(body);
    let r = http_request(
        gw.addr(),
        "POST",
        "/webhook-receiver?topic=gh&event=pull_request",
        &[
            ("X-Hub-Signature", &sig),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .expect("post");
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.text().contains("\"ids\""), "{}", r.text());
    let ev = sub.next_event(EVENT_TIMEOUT).expect("the delivery");
    assert_eq!(ev.data, std::str::from_utf8(body).expect("utf8"));
    assert_eq!(ev.event_type, "pull_request");
    // sha512 too.
    let sha512 = hub_signature::<Hmac<Sha512>>("sha512", HUB_SECRET, b"{}");
    let r = http_request(
        gw.addr(),
        "POST",
        "/webhook-receiver?topic=gh",
        &[
            ("X-Hub-Signature", &sha512),
            ("Content-Type", "application/json"),
        ],
        b"{}",
    )
    .expect("post");
    assert_eq!(r.status, 202, "{}", r.text());
    // Refusals: wrong signature, none, a payload that is not the one signed.
    for (headers, want) in [
        (vec![("X-Hub-Signature", sig.as_str())], "does not match"),
        (vec![], "missing x-hub-signature"),
    ] {
        let r = http_request(
            gw.addr(),
            "POST",
            "/webhook-receiver?topic=gh",
            &headers,
            b"tampered",
        )
        .expect("post");
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(r.text().contains(want), "{}", r.text());
    }
    assert_eq!(
        sub.next_event(EVENT_TIMEOUT).expect("sha512 one").data,
        "{}"
    );
    assert!(
        sub.next_event(Duration::from_millis(300)).is_none(),
        "nothing refused was published"
    );
}

#[test]
fn standard_webhooks_redeliveries_are_published_once_and_stale_ones_refused() {
    let gw = gateway();
    let mut sub = SseClient::connect(gw.addr(), "/topics/std/events", &[]);
    let body = br#"{"type":"invoice.paid"}"#;
    let ts = now();
    let sig = standard_signature("msg_1", ts, body);
    let ts_text = ts.to_string();
    let headers = [
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", ts_text.as_str()),
        ("webhook-signature", sig.as_str()),
    ];
    // The provider's delivery, and its redelivery of the same message.
    let deliver = || {
        http_request(
            gw.addr(),
            "POST",
            "/webhook-receiver?topic=std",
            &headers,
            body,
        )
        .expect("post")
    };
    let first = deliver();
    assert_eq!(first.status, 202, "{}", first.text());
    let again = deliver();
    assert_eq!(again.status, 202);
    assert_eq!(
        again.text(),
        first.text(),
        "the redelivery answers with the first id"
    );
    assert_eq!(
        sub.next_event(EVENT_TIMEOUT).expect("once").data,
        std::str::from_utf8(body).expect("utf8")
    );
    assert!(
        sub.next_event(Duration::from_millis(300)).is_none(),
        "published once"
    );
    // Ten minutes old: outside the 300 s tolerance.
    let old = ts - 600;
    let old_text = old.to_string();
    let old_sig = standard_signature("msg_2", old, body);
    let r = http_request(
        gw.addr(),
        "POST",
        "/webhook-receiver?topic=std",
        &[
            ("webhook-id", "msg_2"),
            ("webhook-timestamp", &old_text),
            ("webhook-signature", &old_sig),
        ],
        body,
    )
    .expect("post");
    assert_eq!(r.status, 401);
    assert!(r.text().contains("webhook-timestamp"), "{}", r.text());
}

#[test]
fn unsigned_topics_follow_the_usual_credentials_and_bad_requests_are_refused() {
    let gw = gateway();
    let mut sub = SseClient::connect(gw.addr(), "/topics/plain/events", &[]);
    // No receiver for `plain`: anonymous publishing on loopback, as for any publish.
    let r = http_request(
        gw.addr(),
        "POST",
        "/webhook-receiver?topic=plain",
        &[("Content-Type", "text/plain")],
        b"hello",
    )
    .expect("post");
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(sub.next_event(EVENT_TIMEOUT).expect("event").data, "hello");
    let cases: [(&str, &[u8], u16); 4] = [
        ("/webhook-receiver", b"x", 400),
        ("/webhook-receiver?topic=bad%20name", b"x", 400),
        ("/webhook-receiver?topic=gateway.x", b"x", 403),
        ("/webhook-receiver?topic=plain", &[0xff, 0xfe], 415),
    ];
    for (path, body, status) in cases {
        let r = http_request(gw.addr(), "POST", path, &[], body).expect("post");
        assert_eq!(r.status, status, "{path}: {}", r.text());
    }
    let r = http_request(gw.addr(), "GET", "/webhook-receiver?topic=plain", &[], b"").expect("get");
    assert_eq!(r.status, 405);
}

#[test]
fn a_rotated_secret_file_takes_effect_on_sighup() {
    let dir = std::env::temp_dir().join(format!("sluicegate-whsecret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let secret_file = dir.join("gh.secret");
    std::fs::write(&secret_file, format!("{HUB_SECRET}\n")).expect("secret");
    let toml = format!(
        "[[webhooks.receivers]]\ntopic = \"gh\"\nscheme = \"websub\"\nsecret_file = \"{}\"\n",
        secret_file.display()
    );
    let gw = Gateway::start(&["--config", &config_file(&toml)]);
    let post = |secret: &str| {
        let signature = hub_signature::<Hmac<Sha256>>("sha256", secret, b"{}");
        http_request(
            gw.addr(),
            "POST",
            "/webhook-receiver?topic=gh",
            &[("X-Hub-Signature", &signature)],
            b"{}",
        )
        .expect("post")
        .status
    };
    assert_eq!(post(HUB_SECRET), 202);
    assert_eq!(post("rotated-secret"), 401);
    std::fs::write(&secret_file, "rotated-secret\n").expect("rotate");
    let status = Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    // The reload happens on the signal thread: wait for it to show.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while post("rotated-secret") != 202 {
        assert!(
            std::time::Instant::now() < deadline,
            "new secret never accepted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(post(HUB_SECRET), 401, "the old secret no longer works");
    assert!(gw.log().contains("webhook receiver secret"), "{}", gw.log());
    let _ = std::fs::remove_dir_all(&dir);
}
