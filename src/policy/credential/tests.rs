//! Unit and property tests of `policy::credential`.
use super::*;
use proptest::prelude::*;

const Q: &str = "access_token";
const C: &str = "sluicegate_token";

fn header(value: &str) -> Result<Option<Credential<'_>>, CredentialError> {
    extract(Some(value.as_bytes()), &[], "", Q, C)
}

fn token_of(r: Result<Option<Credential<'_>>, CredentialError>) -> (String, CredentialSource) {
    let c = r.expect("ok").expect("some");
    (c.token.into_owned(), c.source)
}

#[test]
fn bearer_header() {
    use CredentialSource::Header;
    for v in ["Bearer abc", "bearer abc", "BEARER   abc", " Bearer abc \t"] {
        assert_eq!(token_of(header(v)), ("abc".into(), Header), "{v:?}");
    }
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig-_~+/==";
    assert_eq!(token_of(header(&format!("Bearer {jwt}"))).0, jwt);
    // Borrowed: no copy for the common case.
    let c = header("Bearer abc").expect("ok").expect("some");
    assert!(matches!(c.token, Cow::Borrowed("abc")));
}

#[test]
fn header_errors() {
    use BearerErrorCode::*;
    let cases: &[(&[u8], CredentialError, BearerErrorCode, &str)] = &[
        (
            b"Basic dXNlcjpwdw==",
            CredentialError::NotBearer,
            InvalidRequest,
            "Bearer scheme",
        ),
        (
            b"abc123",
            CredentialError::NotBearer,
            InvalidRequest,
            "Bearer scheme",
        ),
        (
            b"Bearerabc",
            CredentialError::NotBearer,
            InvalidRequest,
            "Bearer scheme",
        ),
        (
            b"Bearer",
            CredentialError::BearerWithoutToken,
            InvalidRequest,
            "no token",
        ),
        (
            b"Bearer   ",
            CredentialError::BearerWithoutToken,
            InvalidRequest,
            "no token",
        ),
        (
            b"",
            CredentialError::Empty(Place::header()),
            InvalidRequest,
            "empty Authorization",
        ),
        (
            b"Bearer a b",
            CredentialError::MalformedBearer,
            InvalidToken,
            "malformed",
        ),
        (
            b"Bearer =abc",
            CredentialError::MalformedBearer,
            InvalidToken,
            "malformed",
        ),
        (
            b"Bearer ab=c",
            CredentialError::MalformedBearer,
            InvalidToken,
            "malformed",
        ),
        (
            b"Bearer a\"b",
            CredentialError::MalformedBearer,
            InvalidToken,
            "malformed",
        ),
        (
            b"Bearer \xff\xfe",
            CredentialError::HeaderNotUtf8,
            InvalidRequest,
            "UTF-8",
        ),
    ];
    for (value, want, code, msg) in cases {
        let got = extract(Some(value), &[], "", Q, C).unwrap_err();
        assert_eq!(&got, want, "{value:?}");
        assert_eq!(got.bearer_error_code(), *code, "{value:?}");
        assert_eq!(got.credential_source(), CredentialSource::Header);
        assert!(got.to_string().contains(msg), "{value:?}: {got}");
    }
    assert_eq!(InvalidRequest.as_str(), "invalid_request");
    assert_eq!(InvalidToken.as_str(), "invalid_token");
}

#[test]
fn length_limit() {
    let max = "a".repeat(MAX_TOKEN_LEN);
    assert_eq!(token_of(header(&format!("Bearer {max}"))).0, max);
    let over = format!("Bearer {max}a");
    let err = header(&over).unwrap_err();
    assert_eq!(err, CredentialError::TooLong(Place::header()));
    assert_eq!(
        err.to_string(),
        "the token in the Authorization header is longer than 8192 bytes"
    );
    let q = format!("{Q}={max}a");
    assert_eq!(
        extract(None, &[], &q, Q, C),
        Err(CredentialError::TooLong(Place::query(Q)))
    );
}

#[test]
fn query_param() {
    let got = extract(None, &[], "topic=a&access_token=abc&access_token=def", Q, C);
    assert_eq!(token_of(got), ("abc".into(), CredentialSource::Query));
    // Percent-decoded; '+' must be escaped since it means a space.
    let got = extract(None, &[], "access_token=a%2Bb%2F%3D", Q, C);
    assert_eq!(token_of(got).0, "a+b/=");
    let err = extract(None, &[], "access_token=a+b", Q, C).unwrap_err();
    assert_eq!(err, CredentialError::BadChars(Place::query(Q)));
    assert!(err.to_string().contains("%2B"), "{err}");
    assert_eq!(err.bearer_error_code(), BearerErrorCode::InvalidToken);

    let err = extract(None, &[], "access_token=", Q, C).unwrap_err();
    assert_eq!(err.to_string(), "empty access_token query parameter");
    assert_eq!(err.bearer_error_code(), BearerErrorCode::InvalidRequest);

    let err = extract(None, &[], "secretish%zz&access_token=abc", Q, C).unwrap_err();
    assert_eq!(err, CredentialError::QueryEscape);
    assert!(!err.to_string().contains("secretish"), "{err}");
    assert_eq!(
        extract(None, &[], "access_token=%ff", Q, C),
        Err(CredentialError::QueryUtf8)
    );
    // Another name, or the source turned off.
    assert_eq!(extract(None, &[], "access_token=abc", "tok", C), Ok(None));
    assert_eq!(extract(None, &[], "access_token=abc", "", C), Ok(None));
    assert_eq!(extract(None, &[], "access_token=abc%zz", "", C), Ok(None));
}

#[test]
fn cookies() {
    use CredentialSource::Cookie;
    let get = |headers: &[&'static [u8]]| extract(None, headers, "", Q, C);
    assert_eq!(
        token_of(get(&[b"a=1; sluicegate_token=abc; b=2"])),
        ("abc".into(), Cookie)
    );
    assert_eq!(token_of(get(&[b"sluicegate_token=\"abc\""])).0, "abc");
    assert_eq!(token_of(get(&[b"  sluicegate_token = abc= ;x"])).0, "abc=");
    // First wins, across headers; other cookies' bytes do not matter.
    assert_eq!(
        token_of(get(&[
            b"x=\xff\xfe; other",
            b"sluicegate_token=one; sluicegate_token=two",
            b"sluicegate_token=three",
        ]))
        .0,
        "one"
    );
    assert_eq!(
        get(&[b"sluicegate_tokenx=1; xsluicegate_token=2"]),
        Ok(None)
    );
    assert_eq!(
        get(&[b"Sluicegate_Token=1"]),
        Ok(None),
        "names are case-sensitive"
    );
    assert_eq!(get(&[]), Ok(None));
    assert_eq!(extract(None, &[b"sluicegate_token=a"], "", Q, ""), Ok(None));

    let errs: &[(&[u8], CredentialError)] = &[
        (
            b"sluicegate_token=",
            CredentialError::Empty(Place::cookie(C)),
        ),
        (
            b"sluicegate_token=\"\"",
            CredentialError::Empty(Place::cookie(C)),
        ),
        (
            b"sluicegate_token=\"abc",
            CredentialError::UnterminatedQuote(Place::cookie(C)),
        ),
        (
            b"sluicegate_token=\"",
            CredentialError::UnterminatedQuote(Place::cookie(C)),
        ),
        (
            b"sluicegate_token=a b",
            CredentialError::BadChars(Place::cookie(C)),
        ),
        (
            b"sluicegate_token=a\xffb",
            CredentialError::BadChars(Place::cookie(C)),
        ),
    ];
    for (h, want) in errs {
        assert_eq!(get(&[h]).as_ref(), Err(want), "{h:?}");
    }
    assert_eq!(
        CredentialError::BadChars(Place::cookie(C)).to_string(),
        "the token in the sluicegate_token cookie may only contain visible ASCII \
         characters, without spaces"
    );
}

#[test]
fn precedence_and_absence() {
    let cookies: &[&[u8]] = &[b"sluicegate_token=fromcookie"];
    let q = "access_token=fromquery";
    let all = extract(Some(b"Bearer fromheader"), cookies, q, Q, C);
    assert_eq!(
        token_of(all),
        ("fromheader".into(), CredentialSource::Header)
    );
    let no_header = extract(None, cookies, q, Q, C);
    assert_eq!(
        token_of(no_header),
        ("fromquery".into(), CredentialSource::Query)
    );
    let cookie_only = extract(None, cookies, "topic=x", Q, C);
    assert_eq!(
        token_of(cookie_only),
        ("fromcookie".into(), CredentialSource::Cookie)
    );
    // A bad header is the answer: no falling back to a cookie.
    assert_eq!(
        extract(Some(b"Basic x"), cookies, q, Q, C),
        Err(CredentialError::NotBearer)
    );
    assert_eq!(extract(None, &[], "", Q, C), Ok(None));
    assert_eq!(extract(None, &[], "", "", ""), Ok(None));
}

/// Every byte except unreserved ones as %XX, so any token survives the query decoder.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn header_token_round_trips(token in "[A-Za-z0-9._~+/-]{1,64}={0,2}", spaces in 1usize..4) {
        let value = format!("Bearer{}{token}", " ".repeat(spaces));
        let c = extract(Some(value.as_bytes()), &[], "", Q, C).expect("ok").expect("some");
        prop_assert_eq!(c.token, token.as_str());
        prop_assert_eq!(c.source, CredentialSource::Header);
    }

    #[test]
    fn query_token_round_trips(token in "[!-~]{1,64}", before in "[a-z]{1,5}=[a-z]{0,5}") {
        let q = format!("{before}&{Q}={}&{Q}=second", percent_encode(&token));
        let c = extract(None, &[], &q, Q, C).expect("ok").expect("some");
        prop_assert_eq!(c.token, token.as_str());
        prop_assert_eq!(c.source, CredentialSource::Query);
    }

    #[test]
    fn cookie_token_round_trips(
        // Visible ASCII but ';' (the separator) and '"' (quoting).
        token in "[!#-:<-~]{1,64}",
        quoted in any::<bool>(),
        other in "[a-z]{1,5}=[!#-:<-~]{0,5}",
    ) {
        let value = if quoted { format!("\"{token}\"") } else { token.clone() };
        let h1 = format!("{other}; {C}={value}");
        let h2 = format!("{C}=later");
        let headers: [&[u8]; 2] = [h1.as_bytes(), h2.as_bytes()];
        let c = extract(None, &headers, "", Q, C).expect("ok").expect("some");
        prop_assert_eq!(c.token, token.as_str());
        prop_assert_eq!(c.source, CredentialSource::Cookie);
    }

    #[test]
    fn header_beats_query_beats_cookie(
        h in "[A-Za-z0-9]{1,16}",
        q in "[A-Za-z0-9]{1,16}",
        c in "[A-Za-z0-9]{1,16}",
        use_h in any::<bool>(),
        use_q in any::<bool>(),
        use_c in any::<bool>(),
    ) {
        let hv = format!("Bearer {h}");
        let qv = if use_q { format!("x=1&{Q}={q}") } else { "x=1".to_owned() };
        let cv = format!("{C}={c}");
        let cookies: Vec<&[u8]> = if use_c { vec![cv.as_bytes()] } else { vec![] };
        let got = extract(use_h.then_some(hv.as_bytes()), &cookies, &qv, Q, C).expect("ok");
        let want = if use_h {
            Some((h, CredentialSource::Header))
        } else if use_q {
            Some((q, CredentialSource::Query))
        } else if use_c {
            Some((c, CredentialSource::Cookie))
        } else {
            None
        };
        prop_assert_eq!(got.map(|c| (c.token.into_owned(), c.source)), want);
    }

    #[test]
    fn arbitrary_input_never_panics(
        auth in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        cookies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..3),
        query in any::<String>(),
        param in "[a-z_]{0,3}",
        cookie in "[a-z_]{0,3}",
    ) {
        let cookies: Vec<&[u8]> = cookies.iter().map(Vec::as_slice).collect();
        if let Ok(Some(c)) = extract(auth.as_deref(), &cookies, &query, &param, &cookie) {
            prop_assert!(!c.token.is_empty() && c.token.len() <= MAX_TOKEN_LEN);
            prop_assert!(c.token.bytes().all(|b| b.is_ascii_graphic()));
        }
    }

    #[test]
    fn errors_never_echo_the_token(
        secret in "[A-Za-z0-9]{8,16}",
        junk in prop_oneof![Just(" "), Just("\u{e9}"), Just("\""), Just("%zz"), Just("\t")],
    ) {
        let bad = format!("{secret}{junk}{secret}");
        let q = format!("{Q}={bad}");
        let h1 = format!("Bearer {bad}");
        let h2 = format!("{bad} x");
        let ck = format!("{C}={bad}");
        let attempts = [
            extract(Some(h1.as_bytes()), &[], "", Q, C),
            extract(Some(h2.as_bytes()), &[], "", Q, C),
            extract(Some(bad.as_bytes()), &[], "", Q, C),
            extract(None, &[], &q, Q, C),
            extract(None, &[ck.as_bytes()], "", Q, C),
        ];
        for r in attempts {
            if let Err(e) = r {
                prop_assert!(!e.to_string().contains(&secret), "{}", e);
            }
        }
    }
}
