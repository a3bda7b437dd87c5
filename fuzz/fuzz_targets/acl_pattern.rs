//! Fuzz topic-pattern parsing and matching: never panics; whatever parses displays back to a
//! pattern that parses equal; matching agrees with `Acl`, and a `{sub}` pattern never matches
//! for a sub that is not one safe segment.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluicegate::internals::policy::{is_safe_sub, Acl, TopicPattern};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Input is `pattern\ntopic\ntopic...\nsub`-ish: the first line is the pattern, every
    // line is also tried as a topic and as a sub, so the fuzzer can steer both.
    let mut lines = text.split('\n');
    let Some(pattern_text) = lines.next() else {
        return;
    };
    let Ok(pattern) = TopicPattern::parse(pattern_text) else {
        return;
    };

    let shown = pattern.to_string();
    assert_eq!(shown, pattern_text, "Display is not the canonical text");
    assert_eq!(TopicPattern::parse(&shown).as_ref(), Ok(&pattern));

    let acl = Acl::from_patterns(vec![pattern.clone()]);
    let candidates: Vec<&str> = text.split('\n').collect();
    // The pattern itself as a topic, with the wildcards filled in.
    let filled = pattern_text.replace("**", "x.y").replace('*', "w");
    for topic in candidates.iter().copied().chain([filled.as_str()]) {
        for sub in candidates.iter().copied().map(Some).chain([None]) {
            let m = pattern.matches(topic, sub);
            assert_eq!(m, acl.allows(topic, sub));
            if m && pattern.uses_sub() {
                assert!(
                    sub.is_some_and(is_safe_sub),
                    "matched with unsafe sub {sub:?}"
                );
            }
        }
    }
});
