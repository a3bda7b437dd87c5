//! Unit and property tests of `policy::acl`.
use super::*;
use proptest::prelude::*;

fn pat(text: &str) -> TopicPattern {
    TopicPattern::parse(text).expect(text)
}

#[test]
fn literal_star_and_tail() {
    let p = pat("orders.*");
    assert!(p.matches("orders.eu", None));
    assert!(!p.matches("orders", None));
    assert!(!p.matches("orders.eu.x", None));
    assert!(!p.matches("orders.", None), "'*' needs a non-empty segment");
    assert!(!p.matches("Orders.eu", None), "case-sensitive");

    let p = pat("user.alice.**");
    for t in [
        "user.alice",
        "user.alice.x",
        "user.alice.x.y",
        "user.alice.",
    ] {
        assert!(p.matches(t, None), "{t}");
    }
    for t in ["user", "user.alicex", "user.bob.x", "user.aliceb.x"] {
        assert!(!p.matches(t, None), "{t}");
    }

    let all = pat("**");
    for t in ["a", "a.b.c", "..a", "gateway.x", "-"] {
        assert!(all.matches(t, None), "{t}");
    }
    let star_tail = pat("*.**");
    assert!(star_tail.matches("a", None));
    assert!(star_tail.matches("a.b.c", None));
    assert!(!star_tail.matches(".a", None));
}

#[test]
fn sub_is_one_literal_segment() {
    let p = pat("user.{sub}.**");
    assert!(p.uses_sub());
    assert!(p.matches("user.alice", Some("alice")));
    assert!(p.matches("user.alice.inbox", Some("alice")));
    assert!(!p.matches("user.bob.inbox", Some("alice")));
    assert!(!p.matches("user.alice", None));
    // Subs that would widen access match nothing.
    for sub in ["", "*", "**", "a.b", "{sub}", "al ice", "é", "a/b"] {
        assert!(!p.matches("user.a.b", Some(sub)), "{sub:?}");
        assert!(!p.matches(&format!("user.{sub}"), Some(sub)), "{sub:?}");
    }
    let long = "x".repeat(MAX_TOPIC_LEN + 1);
    assert!(!pat("{sub}").matches(&long, Some(&long)));
    assert!(!pat("a.*").uses_sub());
}

#[test]
fn errors_name_the_problem_and_position() {
    let cases: &[(&str, AclError, &str)] = &[
        ("", AclError::Empty, "topic pattern is empty"),
        (
            "a..b",
            AclError::EmptySegment { at: 2 },
            "empty segment at byte 2",
        ),
        (".a", AclError::EmptySegment { at: 0 }, "byte 0"),
        ("a.", AclError::EmptySegment { at: 2 }, "byte 2"),
        (
            "a.**.b",
            AclError::DoubleStarNotLast { at: 2 },
            "only allowed as the last",
        ),
        (
            "**.**",
            AclError::DoubleStarNotLast { at: 0 },
            "'**' at byte 0",
        ),
        ("a.b*", AclError::PartialWildcard { at: 2 }, "whole segment"),
        ("***", AclError::PartialWildcard { at: 0 }, "'*'"),
        (
            "a.x{sub}",
            AclError::PartialPlaceholder { at: 2 },
            "whole segment",
        ),
        (
            "{sub",
            AclError::PartialPlaceholder { at: 0 },
            "placeholder",
        ),
        (
            "{{sub}}",
            AclError::PartialPlaceholder { at: 0 },
            "placeholder",
        ),
        ("{*}", AclError::PartialWildcard { at: 0 }, "'*'"),
        (
            "a.{user}",
            AclError::UnknownPlaceholder {
                name: "user".into(),
                at: 2,
            },
            "unknown placeholder '{user}' at byte 2 (only '{sub}' is supported)",
        ),
        (
            "{}",
            AclError::UnknownPlaceholder {
                name: "".into(),
                at: 0,
            },
            "'{}'",
        ),
        (
            "{a b}",
            AclError::BadChar { found: ' ', at: 2 },
            "' ' at byte 2",
        ),
        (
            "a/b",
            AclError::BadChar { found: '/', at: 1 },
            "'/' at byte 1",
        ),
        (
            "aé",
            AclError::BadChar { found: 'é', at: 1 },
            "'é' at byte 1",
        ),
        (
            "a\n",
            AclError::BadChar { found: '\n', at: 1 },
            "'\\n' at byte 1",
        ),
    ];
    for (text, want, msg) in cases {
        let got = TopicPattern::parse(text).unwrap_err();
        assert_eq!(&got, want, "{text:?}");
        assert!(got.to_string().contains(msg), "{text:?}: {got}");
    }
    let long = "a".repeat(MAX_TOPIC_LEN + 1);
    assert_eq!(
        TopicPattern::parse(&long),
        Err(AclError::TooLong {
            len: MAX_TOPIC_LEN + 1
        })
    );
    assert!(TopicPattern::parse(&"a".repeat(MAX_TOPIC_LEN)).is_ok());
}

#[test]
fn acl_list() {
    let acl = Acl::parse(&["orders.*".into(), "user.{sub}.**".into()]).expect("valid");
    assert!(!acl.is_empty());
    assert!(acl.uses_sub());
    assert!(acl.allows("orders.eu", None));
    assert!(acl.allows("user.bob.x", Some("bob")));
    assert!(!acl.allows("user.bob.x", Some("alice")));
    assert!(!acl.allows("payments", Some("bob")));
    assert_eq!(acl.patterns().len(), 2);

    let none = Acl::none();
    assert!(none.is_empty());
    assert!(!none.uses_sub());
    assert!(!none.allows("a", Some("a")));
    assert_eq!(Acl::parse(&[]), Ok(Acl::none()));

    let err = Acl::parse(&["ok".into(), "a..b".into()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "topic pattern #2 \"a..b\": empty segment at byte 2 \
         (a pattern may not start or end with '.' or contain '..')"
    );
}

#[test]
fn display_is_the_canonical_text() {
    for text in ["**", "a", "a.*.{sub}.**", "*", "{sub}", "a-b_c.D9"] {
        assert_eq!(pat(text).to_string(), text);
    }
}

// ---- property tests ----

/// A valid topic made of non-empty segments.
fn topic() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[A-Za-z0-9_-]{1,6}", 1..6)
}

/// One pattern segment as text, from a small alphabet so matches are frequent.
fn small_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("ab".to_owned()),
        Just("*".to_owned()),
        Just("{sub}".to_owned()),
    ]
}

/// A valid pattern's text from the small alphabet, optionally ending in `**`.
fn small_pattern() -> impl Strategy<Value = String> {
    (prop::collection::vec(small_segment(), 0..4), any::<bool>()).prop_map(|(mut segs, tail)| {
        if tail || segs.is_empty() {
            segs.push("**".to_owned());
        }
        segs.join(".")
    })
}

/// A topic from the same small alphabet, empty segments included.
fn small_topic() -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof!["a", "b", "ab", "", "c"], 1..6)
        .prop_map(|segs| segs.join("."))
}

/// Subs meant to break `{sub}`: wildcards, separators, empties, junk.
fn adversarial_sub() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("*".to_owned())),
        Just(Some("**".to_owned())),
        Just(Some("a.b".to_owned())),
        Just(Some(String::new())),
        Just(Some("{sub}".to_owned())),
        Just(Some("a".to_owned())),
        "[ab.*]{0,4}".prop_map(Some),
        any::<String>().prop_map(Some),
    ]
}

/// The obvious recursive matcher over split strings, to check the real one against.
fn naive(pattern: &str, topic: &str, sub: Option<&str>) -> bool {
    fn go(p: &[&str], t: &[&str], sub: Option<&str>) -> bool {
        match (p, t) {
            ([], []) => true,
            (["**"], _) => true,
            ([], _) | (_, []) => false,
            ([seg, p_rest @ ..], [part, t_rest @ ..]) => {
                let ok = match *seg {
                    "*" => !part.is_empty(),
                    "{sub}" => sub.is_some_and(|s| {
                        !s.is_empty()
                            && s.len() <= 249
                            && s.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                            && s == *part
                    }),
                    lit => lit == *part,
                };
                ok && go(p_rest, t_rest, sub)
            }
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    go(&p, &t, sub)
}

proptest! {
    #[test]
    fn wildcarded_topic_matches_it(
        segs in topic(),
        stars in prop::collection::vec(any::<bool>(), 6),
        cut in prop::option::of(0usize..6),
    ) {
        let text = segs.join(".");
        let mut pattern: Vec<&str> = segs
            .iter()
            .zip(&stars)
            .map(|(s, &star)| if star { "*" } else { s.as_str() })
            .collect();
        if let Some(cut) = cut {
            pattern.truncate(cut.min(segs.len()));
            pattern.push("**");
        }
        let p = TopicPattern::parse(&pattern.join(".")).expect("valid");
        prop_assert!(p.matches(&text, None), "{} vs {}", p, text);
    }

    #[test]
    fn literal_matches_only_itself(p in small_topic(), t in small_topic()) {
        // Empty segments cannot be written in a pattern.
        prop_assume!(p.split('.').all(|s| !s.is_empty()));
        let pattern = TopicPattern::parse(&p).expect("valid");
        prop_assert_eq!(pattern.matches(&t, None), p == t);
        prop_assert!(pattern.matches(&p, None));
    }

    #[test]
    fn sub_never_widens(
        pattern in small_pattern(),
        sub in adversarial_sub(),
        random_topic in small_topic(),
        instantiate in any::<bool>(),
    ) {
        let p = TopicPattern::parse(&pattern).expect("valid");
        let sub = sub.as_deref();
        // Half the time, the topic the pattern would name for this sub, so matches happen.
        let topic = if instantiate {
            pattern.replace("**", "z").replace('*', "w").replace("{sub}", sub.unwrap_or(""))
        } else {
            random_topic
        };
        if p.matches(&topic, sub) {
            let parts: Vec<&str> = topic.split('.').collect();
            for (i, seg) in pattern.split('.').enumerate() {
                if seg == "{sub}" {
                    prop_assert_eq!(Some(parts[i]), sub);
                    prop_assert!(!parts[i].is_empty() && !parts[i].contains(['.', '*']));
                }
            }
        }
    }

    #[test]
    fn display_round_trips(pattern in small_pattern(), lit in "[A-Za-z0-9_-]{1,5}") {
        let text = format!("{lit}.{pattern}");
        let p = TopicPattern::parse(&text).expect("valid");
        prop_assert_eq!(p.to_string(), text.clone());
        prop_assert_eq!(TopicPattern::parse(&p.to_string()), Ok(p));
    }

    #[test]
    fn agrees_with_naive_matcher(
        pattern in small_pattern(),
        topic in small_topic(),
        sub in adversarial_sub(),
    ) {
        let p = TopicPattern::parse(&pattern).expect("valid");
        let sub = sub.as_deref();
        prop_assert_eq!(p.matches(&topic, sub), naive(&pattern, &topic, sub));
        let acl = Acl::from_patterns(vec![p]);
        prop_assert_eq!(acl.allows(&topic, sub), naive(&pattern, &topic, sub));
    }

    #[test]
    fn parse_never_panics_and_round_trips(text in "[a-z.*{}sub_]{0,12}|\\PC{0,12}") {
        if let Ok(p) = TopicPattern::parse(&text) {
            prop_assert_eq!(p.to_string(), text);
        }
    }
}
