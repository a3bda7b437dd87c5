//! Decoding query strings and `application/x-www-form-urlencoded` bodies: `&`-separated
//! `name=value` pairs, `+` as space, `%XX` escapes, UTF-8 required.
//!
//! Strict on purpose: a malformed escape is an error naming the parameter, not a silent
//! pass-through, so a client learns about its encoding bug from the 400 instead of from a topic
//! name with a literal `%zz` in it.

use std::borrow::Cow;

/// Longest piece of client input quoted back in an error message.
const MAX_QUOTED: usize = 64;

/// What is wrong with a query string or an escaped text; `Display` says which parameter.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum QueryError {
    #[error(
        "query parameter {name:?} has an invalid percent-escape (expected % and two hex digits)"
    )]
    ParamEscape { name: String },
    #[error("query parameter {name:?} is not valid UTF-8 once percent-decoded")]
    ParamUtf8 { name: String },
    #[error("{text:?} has an invalid percent-escape (expected % and two hex digits)")]
    Escape { text: String },
    #[error("{text:?} is not valid UTF-8 once percent-decoded")]
    Utf8 { text: String },
}

/// Why one component failed, before we know which message to attach it to.
#[derive(Debug, Clone, Copy)]
enum Fail {
    Escape,
    Utf8,
}

/// Iterate decoded `(name, value)` pairs in order. Empty segments (`a=1&&b=2`) are skipped; a
/// segment without `=` is a name with an empty value. Borrowed when nothing needed decoding.
pub fn pairs(
    query: &str,
) -> impl Iterator<Item = Result<(Cow<'_, str>, Cow<'_, str>), QueryError>> {
    query.split('&').filter(|seg| !seg.is_empty()).map(|seg| {
        let (raw_name, raw_value) = seg.split_once('=').unwrap_or((seg, ""));
        let param_error = |fail: Fail| {
            let name = quote(raw_name);
            match fail {
                Fail::Escape => QueryError::ParamEscape { name },
                Fail::Utf8 => QueryError::ParamUtf8 { name },
            }
        };
        let name = decode(raw_name, true).map_err(param_error)?;
        let value = decode(raw_value, true).map_err(param_error)?;
        Ok((name, value))
    })
}

/// The first value of parameter `name`. The whole query is validated, so a malformed query is
/// an error whichever parameter is asked for.
pub fn first(query: &str, name: &str) -> Result<Option<String>, QueryError> {
    let mut found = None;
    for pair in pairs(query) {
        let (n, v) = pair?;
        if found.is_none() && n == name {
            found = Some(v.into_owned());
        }
    }
    Ok(found)
}

/// Every value of parameter `name`, in order (the whole query is validated).
pub fn all(query: &str, name: &str) -> Result<Vec<String>, QueryError> {
    let mut found = Vec::new();
    for pair in pairs(query) {
        let (n, v) = pair?;
        if n == name {
            found.push(v.into_owned());
        }
    }
    Ok(found)
}

/// Decode one form component: `+` → space, `%XX` → byte, result must be UTF-8.
pub fn percent_decode(s: &str) -> Result<Cow<'_, str>, QueryError> {
    decode(s, true).map_err(|fail| text_error(fail, s))
}

/// Decode a path segment: `%XX` → byte, result must be UTF-8; `+` stays `+` (RFC 3986 has no
/// plus-as-space rule in paths).
pub fn percent_decode_path(s: &str) -> Result<Cow<'_, str>, QueryError> {
    decode(s, false).map_err(|fail| text_error(fail, s))
}

fn text_error(fail: Fail, s: &str) -> QueryError {
    let text = quote(s);
    match fail {
        Fail::Escape => QueryError::Escape { text },
        Fail::Utf8 => QueryError::Utf8 { text },
    }
}

fn decode(s: &str, plus_is_space: bool) -> Result<Cow<'_, str>, Fail> {
    let special = |b: &u8| *b == b'%' || (plus_is_space && *b == b'+');
    if !s.as_bytes().iter().any(special) {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = bytes.next().and_then(hex).ok_or(Fail::Escape)?;
                let lo = bytes.next().and_then(hex).ok_or(Fail::Escape)?;
                out.push(hi << 4 | lo);
            }
            b'+' if plus_is_space => out.push(b' '),
            other => out.push(other),
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| Fail::Utf8)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Client text for an error message, cut at a char boundary so a huge parameter does not make
/// a huge error. Shared with `websub_form`, whose errors quote the same way.
pub(crate) fn quote(s: &str) -> String {
    if s.len() <= MAX_QUOTED {
        return s.to_owned();
    }
    let mut end = MAX_QUOTED;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", s.get(..end).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(q: &str) -> Result<Vec<(String, String)>, QueryError> {
        pairs(q)
            .map(|p| p.map(|(n, v)| (n.into_owned(), v.into_owned())))
            .collect()
    }

    #[test]
    fn decodes_pairs() {
        let got = collect("a=1&b=x+y%20z&&flag&c=%E2%82%AC&=v&d=").expect("valid");
        let want = [
            ("a", "1"),
            ("b", "x y z"),
            ("flag", ""),
            ("c", "€"),
            ("", "v"),
            ("d", ""),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(collect("").expect("empty"), vec![]);
    }

    #[test]
    fn borrows_when_nothing_to_decode() {
        let (n, v) = pairs("topic=orders").next().expect("one").expect("valid");
        assert!(matches!(n, Cow::Borrowed("topic")));
        assert!(matches!(v, Cow::Borrowed("orders")));
    }

    #[test]
    fn value_may_contain_equals() {
        assert_eq!(first("k=a=b", "k"), Ok(Some("a=b".to_owned())));
    }

    #[test]
    fn first_and_all() {
        let q = "t=a&x=1&t=b&t=c+d";
        assert_eq!(first(q, "t"), Ok(Some("a".to_owned())));
        assert_eq!(first(q, "missing"), Ok(None));
        assert_eq!(all(q, "t"), Ok(vec!["a".into(), "b".into(), "c d".into()]));
        assert_eq!(all(q, "missing"), Ok(vec![]));
        // Names are compared after decoding.
        assert_eq!(first("my+key=1", "my key"), Ok(Some("1".to_owned())));
    }

    #[test]
    fn errors_name_the_parameter() {
        for q in ["a=1&topic=%zz", "topic=%", "topic=%4", "topic=%4g"] {
            assert_eq!(
                first(q, "a"),
                Err(QueryError::ParamEscape {
                    name: "topic".into()
                }),
                "{q}"
            );
        }
        let e = first("a=%ff", "a").expect_err("bad utf8");
        assert_eq!(e, QueryError::ParamUtf8 { name: "a".into() });
        assert!(e.to_string().contains("\"a\""), "{e}");
        assert_eq!(
            first("%zz=1", "x"),
            Err(QueryError::ParamEscape { name: "%zz".into() })
        );
    }

    #[test]
    fn long_names_are_shortened_in_errors() {
        let name = "é".repeat(100);
        let e = first(&format!("{name}=%"), "x").expect_err("bad");
        let QueryError::ParamEscape { name: quoted } = e else {
            panic!("wrong variant {e:?}");
        };
        assert!(quoted.len() <= MAX_QUOTED + 3);
        assert!(quoted.ends_with("..."));
    }

    #[test]
    fn path_decoding_keeps_plus() {
        assert_eq!(percent_decode_path("a+b%2Fc").as_deref(), Ok("a+b/c"));
        assert_eq!(percent_decode("a+b%2Fc").as_deref(), Ok("a b/c"));
        assert_eq!(
            percent_decode_path("%C3"),
            Err(QueryError::Utf8 { text: "%C3".into() })
        );
        assert_eq!(
            percent_decode("x%"),
            Err(QueryError::Escape { text: "x%".into() })
        );
    }
}
