//! End to end over loopback: who may publish and subscribe. API keys, JWTs minted by PyJWT
//! (header, query parameter and cookie, as an EventSource client sends them), private topics
//! through `{sub}`, the JWT attack tokens, 401/403 answers and their headers, CORS with
//! credentials, and a stream that ends when its token expires.
mod common;

use common::jwt::{key_file, mint, unix_now};
use common::ws::{WsClient, CLOSE};
use common::{config_file, http_request, Gateway, SseClient, EVENT_TIMEOUT};
use std::time::Duration;

/// The API key `billing` (its SHA-256 is in the config).
const BILLING_KEY: &str = "billing-key-1";
const BILLING_SHA256: &str = "fae753df059d1aaa02b5fce22fbc90ba2d91df1c1908d333c1346f81b16b4499";
const HS_SECRET: &str = "a-test-only-hmac-secret-of-32-bytes!";
const ISSUER: &str = "https://issuer.test";

/// A gateway with one API key and HS256, ES256 and RS256 JWT keys; `extra` is appended to the
/// `[auth]` section.
fn secured_gateway(extra: &str) -> Gateway {
    let toml = format!(
        r#"
[http]
cors_allow_origins = ["https://app.test"]
cors_allow_credentials = true

[auth]
issuer = "{ISSUER}"
audience = "sluicegate"
{extra}

[[auth.api_keys]]
name = "billing"
sha256 = "{BILLING_SHA256}"
publish = ["orders.*", "gateway.x"]
subscribe = ["orders.**"]

[[auth.jwt_keys]]
kid = "hs"
algorithms = ["HS256"]
secret = "{HS_SECRET}"

[[auth.jwt_keys]]
kid = "es"
algorithms = ["ES256"]
pem_file = "{es}"

[[auth.jwt_keys]]
kid = "rs"
algorithms = ["RS256"]
pem_file = "{rs}"
"#,
        es = key_file("es256.pub"),
        rs = key_file("rs256.pub"),
    );
    let path = config_file(&toml);
    Gateway::start(&["--config", &path])
}

/// Claims for `sub` with the gateway's issuer and audience, valid for an hour, reaching only
/// its own `user.<sub>.**` topics and the public ones.
fn claims(sub: &str) -> String {
    let now = unix_now();
    format!(
        r#"{{"sub":"{sub}","iss":"{ISSUER}","aud":"sluicegate","iat":{now},"exp":{exp},
            "sluicegate":{{"publish":["user.{{sub}}.**"],"subscribe":["user.{{sub}}.**","public.*"]}}}}"#,
        exp = now + 3600
    )
}

fn es256_token(claims: &str) -> String {
    mint(&format!(
        r#"{{"alg":"ES256","kid":"es","key_file":"{}","claims":{claims}}}"#,
        key_file("es256.key")
    ))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `POST /topics/{topic}/events` with `authorization` as the `Authorization` header.
fn post_with(gw: &Gateway, topic: &str, authorization: &str) -> common::Response {
    http_request(
        gw.addr(),
        "POST",
        &format!("/topics/{topic}/events"),
        &[("Authorization", authorization)],
        b"x",
    )
    .unwrap_or_else(|e| panic!("POST {topic}: {e}"))
}

fn www_authenticate(r: &common::Response) -> String {
    r.header("www-authenticate").unwrap_or("").to_owned()
}

#[test]
fn without_a_credential_requests_get_401_with_a_bearer_challenge() {
    let gw = secured_gateway("");
    let r = http_request(gw.addr(), "POST", "/topics/orders.eu/events", &[], b"x").unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(www_authenticate(&r), "Bearer realm=\"sluicegate\"");
    let err = SseClient::try_connect(gw.addr(), "/topics/orders.eu/events", &[]).unwrap_err();
    assert!(err.starts_with("status 401"), "{err}");
    // Health, readiness and metrics stay open (probes carry no credentials).
    let r = http_request(gw.addr(), "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn an_api_key_publishes_and_subscribes_within_its_acl_only() {
    let gw = secured_gateway("");
    let auth = bearer(BILLING_KEY);
    let headers = [("Authorization", auth.as_str())];
    let mut sub = SseClient::connect(gw.addr(), "/topics/orders.eu/events", &headers);
    let ids = gw.publish_with("orders.eu", "", &headers, b"paid");
    assert_eq!(ids.len(), 1);
    let ev = sub.next_event(EVENT_TIMEOUT).expect("the event");
    assert_eq!(ev.data, "paid");

    // A topic outside the ACL: 403 naming it.
    let r = http_request(gw.addr(), "POST", "/topics/payments/events", &headers, b"x").unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("`payments`"), "{}", r.text());
    assert!(r.text().contains("billing"), "{}", r.text());
    // A multi-topic subscription needs every topic.
    let err = SseClient::try_connect(
        gw.addr(),
        "/events?topic=orders.eu&topic=payments",
        &headers,
    )
    .unwrap_err();
    assert!(err.starts_with("status 403"), "{err}");
    assert!(err.contains("payments"), "{err}");
    // A resume is checked the same way.
    let last = [
        ("Authorization", auth.as_str()),
        ("Last-Event-ID", ids[0].as_str()),
    ];
    let err = SseClient::try_connect(gw.addr(), "/topics/payments/events", &last).unwrap_err();
    assert!(err.starts_with("status 403"), "{err}");
    // Reserved topics stay closed to clients, whatever the ACL says.
    let r = http_request(
        gw.addr(),
        "POST",
        "/topics/gateway.x/events",
        &headers,
        b"x",
    )
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("reserved"), "{}", r.text());

    // A wrong key: 401 invalid_token, and the key is not echoed.
    let r = post_with(&gw, "orders.eu", &bearer("billing-key-2"));
    assert_eq!(r.status, 401);
    assert!(www_authenticate(&r).contains("error=\"invalid_token\""));
    assert!(!r.text().contains("billing-key-2") && !www_authenticate(&r).contains("billing-key-2"));
    // Another scheme: invalid_request.
    let r = post_with(&gw, "orders.eu", "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
    assert_eq!(r.status, 401);
    assert!(
        www_authenticate(&r).contains("error=\"invalid_request\""),
        "{}",
        www_authenticate(&r)
    );
}

#[test]
fn a_jwt_reaches_its_private_topics_from_header_query_or_cookie() {
    let gw = secured_gateway("");
    let token = es256_token(&claims("alice"));
    let auth = bearer(&token);
    let cookie = format!("theme=dark; sluicegate_token={token}");
    // EventSource cannot set headers: the query parameter and the cookie are how browsers
    // authenticate; all three must work.
    let mut by_header = SseClient::connect(
        gw.addr(),
        "/topics/user.alice.inbox/events",
        &[("Authorization", auth.as_str())],
    );
    let mut by_query = SseClient::connect(
        gw.addr(),
        &format!("/topics/user.alice.inbox/events?access_token={token}"),
        &[],
    );
    let mut by_cookie = SseClient::connect(
        gw.addr(),
        "/topics/user.alice.inbox/events",
        &[("Cookie", cookie.as_str())],
    );
    gw.publish_with(
        "user.alice.inbox",
        "",
        &[("Authorization", auth.as_str())],
        b"hello alice",
    );
    for (how, sub) in [
        ("header", &mut by_header),
        ("query", &mut by_query),
        ("cookie", &mut by_cookie),
    ] {
        let ev = sub.next_event(EVENT_TIMEOUT);
        assert_eq!(
            ev.map(|e| e.data).as_deref(),
            Some("hello alice"),
            "via {how}"
        );
    }
    // Someone else's private topic: 403.
    let err = SseClient::try_connect(
        gw.addr(),
        "/topics/user.bob.inbox/events",
        &[("Authorization", auth.as_str())],
    )
    .unwrap_err();
    assert!(err.starts_with("status 403"), "{err}");
    // A cookie never authorizes a publish (a cross-site form would carry it).
    let r = http_request(
        gw.addr(),
        "POST",
        "/topics/user.alice.inbox/events",
        &[("Cookie", cookie.as_str())],
        b"x",
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    // HS256 and RS256 keys work too, each picked by its kid.
    let hs = mint(&format!(
        r#"{{"alg":"HS256","kid":"hs","secret":"{HS_SECRET}","claims":{}}}"#,
        claims("carol")
    ));
    let rs = mint(&format!(
        r#"{{"alg":"RS256","kid":"rs","key_file":"{}","claims":{}}}"#,
        key_file("rs256.key"),
        claims("dave")
    ));
    for (token, topic) in [(hs, "user.carol.x"), (rs, "user.dave.x")] {
        let auth = bearer(&token);
        let ids = gw.publish_with(topic, "", &[("Authorization", auth.as_str())], b"ok");
        assert_eq!(ids.len(), 1, "{topic}");
    }
}

#[test]
fn attack_and_broken_tokens_get_401_invalid_token() {
    let gw = secured_gateway("leeway_s = 5");
    let now = unix_now();
    let good = claims("mallory");
    let with = |field: &str, value: &str| {
        // Replace one claim of the good set.
        let mut c: Vec<String> = vec![
            r#""sub":"mallory""#.into(),
            format!(r#""iss":"{ISSUER}""#),
            r#""aud":"sluicegate""#.into(),
            format!(r#""exp":{}"#, now + 3600),
            r#""sluicegate":{"publish":["**"]}"#.into(),
        ];
        c.retain(|kv| !kv.starts_with(&format!("\"{field}\"")));
        c.push(format!(r#""{field}":{value}"#));
        format!("{{{}}}", c.join(","))
    };
    let es = |claims: &str| es256_token(claims);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            mint(&format!(r#"{{"forge":"none","kid":"es","claims":{good}}}"#)),
            "algorithm",
        ),
        (
            "HS256 keyed with the RSA public key",
            mint(&format!(
                r#"{{"forge":"hs256_with_file","kid":"rs","key_file":"{}","claims":{good}}}"#,
                key_file("rs256.pub")
            )),
            "algorithm",
        ),
        (
            "expired",
            es(&with("exp", &(now - 60).to_string())),
            "expired",
        ),
        (
            "not yet valid",
            es(&with("nbf", &(now + 600).to_string())),
            "not yet valid",
        ),
        (
            "wrong issuer",
            es(&with("iss", "\"https://evil.test\"")),
            "issuer",
        ),
        (
            "wrong audience",
            es(&with("aud", "\"someone-else\"")),
            "audience",
        ),
        (
            "unknown kid",
            mint(&format!(
                r#"{{"alg":"ES256","kid":"nope","key_file":"{}","claims":{good}}}"#,
                key_file("es256.key")
            )),
            "key id",
        ),
        ("malformed", "not.a.jwt".to_owned(), "malformed"),
        (
            "tampered payload",
            {
                let t = es(&good);
                let parts: Vec<&str> = t.split('.').collect();
                // The payload of another (valid) token under this token's signature.
                let other = es(&claims("root"));
                let other_payload = other.split('.').nth(1).unwrap_or("");
                format!("{}.{}.{}", parts[0], other_payload, parts[2])
            },
            "signature",
        ),
        (
            "ACL claim of the wrong shape",
            es(&with("sluicegate", r#"{"publish":"everything"}"#)),
            "claim",
        ),
    ];
    for (what, token, expect) in cases {
        let r = post_with(&gw, "user.mallory.x", &bearer(&token));
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        let challenge = www_authenticate(&r);
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
        assert!(challenge.contains(expect), "{what}: {challenge}");
        assert!(!r.text().contains(&token), "{what}: the token is echoed");
    }
    // Within the leeway an expired token is still good.
    let just = es(&with("exp", &(now - 1).to_string()));
    let r = post_with(&gw, "user.mallory.x", &bearer(&just));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!gw.log().contains(&just), "tokens never reach the log");
}

#[test]
fn a_stream_ends_when_its_token_expires() {
    let gw = secured_gateway("leeway_s = 0");
    let now = unix_now();
    let short = es256_token(&format!(
        r#"{{"sub":"erin","iss":"{ISSUER}","aud":"sluicegate","exp":{},
            "sluicegate":{{"subscribe":["user.{{sub}}.**"],"publish":["user.{{sub}}.**"]}}}}"#,
        now + 3
    ));
    let auth = bearer(&short);
    let headers = [("Authorization", auth.as_str())];
    let mut sub = SseClient::connect(gw.addr(), "/topics/user.erin.x/events", &headers);
    gw.publish_with("user.erin.x", "", &headers, b"before expiry");
    assert_eq!(
        sub.next_event(EVENT_TIMEOUT).map(|e| e.data).as_deref(),
        Some("before expiry")
    );
    assert!(
        sub.wait_closed(Duration::from_secs(15)),
        "the stream was not closed at expiry"
    );
    assert!(
        sub.raw_text().contains("token expired"),
        "{}",
        sub.raw_text()
    );
    let m = http_request(gw.addr(), "GET", "/metrics", &[], b"").unwrap();
    assert!(
        m.text()
            .contains("sluicegate_token_expired_closes_total{shard=\"0\"} 1"),
        "{}",
        m.text()
    );
}

#[test]
fn cors_echoes_listed_origins_with_credentials_and_ignores_others() {
    let gw = secured_gateway("");
    let r = http_request(
        gw.addr(),
        "OPTIONS",
        "/topics/orders.eu/events",
        &[
            ("Origin", "https://app.test"),
            ("Access-Control-Request-Method", "GET"),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 204, "preflight needs no credential");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.test")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("vary"), Some("Origin"));
    let r = http_request(
        gw.addr(),
        "OPTIONS",
        "/topics/orders.eu/events",
        &[("Origin", "https://evil.test")],
        b"",
    )
    .unwrap();
    assert_eq!(r.header("access-control-allow-origin"), None);
    // The stream itself answers the listed origin too (cookie auth from the page).
    let token = es256_token(&claims("frank"));
    let cookie = format!("sluicegate_token={token}");
    let sub = SseClient::connect(
        gw.addr(),
        "/topics/user.frank.x/events",
        &[("Cookie", cookie.as_str()), ("Origin", "https://app.test")],
    );
    assert_eq!(
        sub.header("access-control-allow-origin"),
        Some("https://app.test")
    );
    assert_eq!(sub.header("access-control-allow-credentials"), Some("true"));
}

#[test]
fn an_open_gateway_off_loopback_is_refused_at_start() {
    // Without credentials, a non-loopback address must be asked for explicitly.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .args(["--listen", "0.0.0.0:0", "--check-config"])
        .output()
        .expect("run sluicegate");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.listen"), "{err}");
    assert!(
        err.contains("auth.anonymous = \\\"allow\\\"")
            || err.contains("auth.anonymous = \"allow\""),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluicegate"))
        .args([
            "--listen",
            "0.0.0.0:0",
            "--set",
            "auth.anonymous=allow",
            "--check-config",
        ])
        .output()
        .expect("run sluicegate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_changed_jwks_file_is_used_without_a_restart() {
    let full = std::fs::read_to_string(key_file("jwks.json")).expect("read jwks.json");
    let doc: serde_json::Value = serde_json::from_str(&full).expect("jwks.json parses");
    let only_es: Vec<serde_json::Value> = doc["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["kid"] == "es-1")
        .cloned()
        .collect();
    let jwks = std::path::PathBuf::from(config_file("")).with_file_name("jwks.json");
    std::fs::write(&jwks, serde_json::json!({ "keys": only_es }).to_string()).unwrap();
    let toml = format!(
        "[[auth.jwt_keys]]\nalgorithms = [\"ES256\", \"EdDSA\"]\njwks_file = \"{}\"\n",
        jwks.display()
    );
    let mut gw = Gateway::start(&["--config", &config_file(&toml)]);
    let claims = r#"{"sub":"gina","sluicegate":{"publish":["user.{sub}.**"]}}"#;
    let ed = mint(&format!(
        r#"{{"alg":"EdDSA","kid":"ed-1","key_file":"{}","claims":{claims}}}"#,
        key_file("ed25519.key")
    ));
    let es = mint(&format!(
        r#"{{"alg":"ES256","kid":"es-1","key_file":"{}","claims":{claims}}}"#,
        key_file("es256.key")
    ));
    let publish = |token: &str| post_with(&gw, "user.gina.x", &bearer(token));
    assert_eq!(publish(&es).status, 200);
    let r = publish(&ed);
    assert_eq!(r.status, 401);
    assert!(
        www_authenticate(&r).contains("unknown key id"),
        "{}",
        www_authenticate(&r)
    );
    // The identity provider adds a key: the file changes, and the operator sends SIGHUP.
    std::fs::write(&jwks, &full).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(hup.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while publish(&ed).status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the new key was never loaded; log:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(publish(&es).status, 200, "the old key stays");
    // A broken file keeps the keys in use.
    std::fs::write(&jwks, "{not json").unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .expect("run kill");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(publish(&ed).status, 200, "log:\n{}", gw.log());
    assert!(gw.log().contains("not reloaded"), "log:\n{}", gw.log());
    gw.assert_alive();
}

#[test]
fn a_websocket_authenticated_by_query_token_closes_with_1008_at_expiry() {
    let gw = secured_gateway("leeway_s = 0");
    let token = es256_token(&format!(
        r#"{{"sub":"hana","iss":"{ISSUER}","aud":"sluicegate","exp":{},
            "sluicegate":{{"subscribe":["user.{{sub}}.**"]}}}}"#,
        unix_now() + 3
    ));
    let mut ws = WsClient::connect(
        gw.addr(),
        &format!("/topics/user.hana.x/ws?access_token={token}"),
        &[],
    );
    let close = loop {
        let f = ws
            .next_message(Duration::from_secs(15))
            .expect("the stream was not closed at expiry");
        if f.opcode == CLOSE {
            break f;
        }
    };
    assert_eq!(close.close_code(), Some(1008));
    assert!(
        close.close_reason().contains("token expired"),
        "{}",
        close.close_reason()
    );
}
