//! URL parsing: normalization, each refusal, and a round trip through `Display`.
use proptest::prelude::*;

use super::*;

fn parse(s: &str) -> Url {
    Url::parse(s).unwrap()
}

#[test]
fn normalizes_scheme_host_port_and_path() {
    let u = parse("HTTPS://Hooks.Example.COM/In?x=1#frag");
    assert_eq!(u.scheme(), Scheme::Https);
    assert_eq!((u.host(), u.port()), ("hooks.example.com", 443));
    assert_eq!(u.path_and_query(), "/In?x=1");
    assert_eq!(u.host_header(), "hooks.example.com");
    assert_eq!(u.to_string(), "https://hooks.example.com/In?x=1");
}

#[test]
fn default_and_explicit_ports() {
    assert_eq!(parse("http://h").port(), 80);
    assert_eq!(parse("http://h:").port(), 80);
    let u = parse("http://h:8080");
    assert_eq!((u.port(), u.path_and_query()), (8080, "/"));
    assert_eq!(u.host_header(), "h:8080");
    assert_eq!(parse("https://h:443/").host_header(), "h");
    assert_eq!(parse("http://h?q").path_and_query(), "/?q");
}

#[test]
fn ip_literals() {
    let v4 = parse("http://127.0.0.1:9000/x");
    assert_eq!(v4.ip(), Some("127.0.0.1".parse().unwrap()));
    let v6 = parse("https://[::FFFF:127.0.0.1]:8443/");
    assert_eq!(v6.host(), "::ffff:127.0.0.1");
    assert_eq!(v6.host_header(), "[::ffff:127.0.0.1]:8443");
    assert_eq!(v6.to_string(), "https://[::ffff:127.0.0.1]:8443/");
    assert!(parse("http://example.com").ip().is_none());
}

#[test]
fn refusals() {
    let err = |s: &str| Url::parse(s).unwrap_err();
    assert_eq!(err("example.com/hook"), UrlError::NotAbsolute);
    assert_eq!(err("://example.com"), UrlError::NotAbsolute);
    assert_eq!(
        err("ftp://example.com"),
        UrlError::UnsupportedScheme("ftp".into())
    );
    assert_eq!(err("http://user:pw@example.com/"), UrlError::UserInfo);
    assert_eq!(err("http:///path"), UrlError::EmptyHost);
    assert_eq!(err("http://:80/"), UrlError::EmptyHost);
    assert!(matches!(err("http://exa mple.com/"), UrlError::BadHost(_)));
    assert!(matches!(err("http://bücher.de/"), UrlError::BadHost(_)));
    assert!(matches!(err("http://a..b/"), UrlError::BadHost(_)));
    assert_eq!(err("http://127.1/"), UrlError::NumericHost("127.1".into()));
    assert!(matches!(
        err("http://2130706433/"),
        UrlError::NumericHost(_)
    ));
    assert!(matches!(
        err("http://0x7f.0.0.1/"),
        UrlError::NumericHost(_)
    ));
    assert!(matches!(err("http://[::1/"), UrlError::BadIpv6(_)));
    assert!(matches!(
        err("http://[fe80::1%25eth0]/"),
        UrlError::BadIpv6(_)
    ));
    assert!(matches!(err("http://[::1]x/"), UrlError::BadPort(_)));
    assert!(matches!(err("http://h:0/"), UrlError::BadPort(_)));
    assert!(matches!(err("http://h:65536/"), UrlError::BadPort(_)));
    assert!(matches!(err("http://h:+80/"), UrlError::BadPort(_)));
    assert_eq!(err("http://h/a b"), UrlError::BadPathChar(' '));
    assert_eq!(err("http://h/a\r\nX: y"), UrlError::BadPathChar('\r'));
    assert_eq!(err("http://h/é"), UrlError::BadPathChar('é'));
    assert_eq!(
        err(&format!("http://h/{}", "a".repeat(MAX_URL))),
        UrlError::TooLong
    );
}

#[test]
fn messages_say_what_is_wrong() {
    assert_eq!(
        UrlError::UserInfo.to_string(),
        "user info (user:password@) is not allowed in a webhook URL"
    );
    assert_eq!(
        UrlError::UnsupportedScheme("ftp".into()).to_string(),
        "unsupported scheme \"ftp\": only http and https"
    );
}

proptest! {
    #[test]
    fn display_parses_back_to_the_same_url(
        https in any::<bool>(),
        host in "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
        port in prop::option::of(1u16..),
        path in "(/[!-~&&[^#?]]{0,12}){0,3}(\\?[!-~&&[^#]]{0,12})?",
    ) {
        let scheme = if https { "https" } else { "http" };
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let u = Url::parse(&format!("{scheme}://{host}{port}{path}")).unwrap();
        prop_assert_eq!(Url::parse(&u.to_string()), Ok(u.clone()));
        prop_assert!(u.path_and_query().starts_with('/'));
    }

    #[test]
    fn arbitrary_input_never_panics(s in "\\PC{0,60}") {
        let _ = Url::parse(&s);
    }
}
