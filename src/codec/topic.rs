//! Topic-name validation. Names follow Kafka's rules so an HTTP topic can later map 1:1 to a
//! Kafka topic without renaming.

/// Kafka's limit on topic-name length, in bytes.
pub const MAX_TOPIC_LEN: usize = 249;

/// Prefix of the topics that carry the gateway's own system events.
const RESERVED_PREFIX: &str = "gateway.";

/// Why a string is not a valid topic name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopicError {
    /// The name has no bytes.
    #[error("topic name is empty")]
    Empty,
    /// The name is over [`MAX_TOPIC_LEN`] bytes.
    #[error("topic name is longer than {MAX_TOPIC_LEN} bytes")]
    TooLong,
    /// The name has a character outside `[A-Za-z0-9._-]`.
    #[error(
        "topic name may only contain ASCII letters, digits, '.', '_' and '-' (found '{}' at byte {at})",
        found.escape_debug()
    )]
    BadChar {
        /// The first character that is not allowed.
        found: char,
        /// Its byte offset in the name.
        at: usize,
    },
    /// `.` and `..` are refused by Kafka (they would be path components on its disk).
    #[error("'.' and '..' are not valid topic names")]
    DotName,
}

/// Checks `name` against Kafka's topic-name rules.
pub fn validate_topic(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong);
    }
    if let Some((at, found)) = name.char_indices().find(|&(_, c)| !is_topic_char(c)) {
        return Err(TopicError::BadChar { found, at });
    }
    if name == "." || name == ".." {
        return Err(TopicError::DotName);
    }
    Ok(())
}

/// Whether `name` is reserved for system events (publishing there is refused by the caller).
pub fn is_reserved(name: &str) -> bool {
    name.starts_with(RESERVED_PREFIX)
}

fn is_topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_kafka_style_names() {
        for name in ["orders", "a", "Orders.v2_eu-west", "..a", "...", "0"] {
            assert_eq!(validate_topic(name), Ok(()), "{name}");
        }
        assert_eq!(validate_topic(&"x".repeat(MAX_TOPIC_LEN)), Ok(()));
    }

    #[test]
    fn rejects_with_messages() {
        assert_eq!(validate_topic(""), Err(TopicError::Empty));
        assert_eq!(TopicError::Empty.to_string(), "topic name is empty");
        let long = "x".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(validate_topic(&long), Err(TopicError::TooLong));
        assert_eq!(
            TopicError::TooLong.to_string(),
            "topic name is longer than 249 bytes"
        );
        let err = validate_topic("abc%d").unwrap_err();
        assert_eq!(err, TopicError::BadChar { found: '%', at: 3 });
        assert_eq!(
            err.to_string(),
            "topic name may only contain ASCII letters, digits, '.', '_' and '-' (found '%' at byte 3)"
        );
        assert_eq!(validate_topic("."), Err(TopicError::DotName));
        assert_eq!(validate_topic(".."), Err(TopicError::DotName));
        assert_eq!(
            TopicError::DotName.to_string(),
            "'.' and '..' are not valid topic names"
        );
    }

    #[test]
    fn bad_chars_report_whole_char_and_byte_offset() {
        assert_eq!(
            validate_topic("aé"),
            Err(TopicError::BadChar { found: 'é', at: 1 })
        );
        assert_eq!(
            validate_topic("a b"),
            Err(TopicError::BadChar { found: ' ', at: 1 })
        );
        assert_eq!(
            validate_topic("a/b"),
            Err(TopicError::BadChar { found: '/', at: 1 })
        );
        let newline = validate_topic("a\nb").unwrap_err().to_string();
        assert!(newline.contains("'\\n' at byte 1"), "{newline}");
        // Length counts bytes: 125 two-byte chars are 250 bytes.
        assert_eq!(validate_topic(&"é".repeat(125)), Err(TopicError::TooLong));
    }

    #[test]
    fn reserved_prefix() {
        assert!(is_reserved("gateway.connections"));
        assert!(is_reserved("gateway."));
        assert!(!is_reserved("gateway"));
        assert!(!is_reserved("gateways.x"));
        assert!(!is_reserved("Gateway.x"));
    }

    proptest! {
        #[test]
        fn never_panics_and_matches_rules(name in any::<String>()) {
            let ok = !name.is_empty()
                && name.len() <= MAX_TOPIC_LEN
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && name != "."
                && name != "..";
            prop_assert_eq!(validate_topic(&name).is_ok(), ok);
        }

        #[test]
        fn valid_alphabet_names_pass(name in "[A-Za-z0-9_-][A-Za-z0-9._-]{0,248}") {
            prop_assert_eq!(validate_topic(&name), Ok(()));
        }
    }
}
