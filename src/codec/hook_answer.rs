//! A sync hook's answer over HTTP (sans-IO): what an HTTP hook endpoint may say about a publish
//! or a subscription. A 2xx with an empty body accepts; otherwise the body is JSON:
//! `{"action": "accept"}`, `{"action": "reject", "status": 403, "reason": "..."}` or (publish
//! hooks) `{"action": "modify", "data": "..." | [...], "type": "..." | null, "headers": {...},
//! "topics": [...]}`. Any other status is a failure of the hook (its failure policy applies).
use std::collections::BTreeMap;

use serde::Deserialize;

/// What the hook said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAnswer {
    Accept,
    Reject {
        status: u16,
        reason: String,
    },
    Modify {
        data: Option<Vec<String>>,
        /// `Some(None)`: remove the type.
        event_type: Option<Option<String>>,
        headers: Option<BTreeMap<String, String>>,
        topics: Option<Vec<String>>,
    },
}

/// Why an answer is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookAnswerError {
    #[error("the hook answered {0} (expected 2xx)")]
    Status(u16),
    #[error("the hook's answer is not valid JSON of the hook protocol: {0}")]
    Body(String),
    #[error("the hook's answer has unknown action `{0}` (accept, reject or modify)")]
    Action(String),
    #[error("the hook rejected with status {0}; use 400 to 599")]
    RejectStatus(u16),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    action: String,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    data: Option<OneOrMany>,
    #[serde(default, rename = "type", deserialize_with = "present")]
    event_type: Option<Option<String>>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    topics: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `"type": null` is present (remove the type); a missing field keeps it.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Read an answer: its HTTP `status` and `body`.
pub fn parse_hook_answer(status: u16, body: &[u8]) -> Result<HookAnswer, HookAnswerError> {
    if !(200..300).contains(&status) {
        return Err(HookAnswerError::Status(status));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(HookAnswer::Accept);
    }
    let wire: Wire =
        serde_json::from_slice(body).map_err(|e| HookAnswerError::Body(e.to_string()))?;
    match wire.action.as_str() {
        "accept" => Ok(HookAnswer::Accept),
        "reject" => {
            let status = wire.status.unwrap_or(403);
            if !(400..600).contains(&status) {
                return Err(HookAnswerError::RejectStatus(status));
            }
            Ok(HookAnswer::Reject {
                status,
                reason: wire.reason.unwrap_or_else(|| "no reason given".into()),
            })
        }
        "modify" => Ok(HookAnswer::Modify {
            data: wire.data.map(|d| match d {
                OneOrMany::One(s) => vec![s],
                OneOrMany::Many(v) => v,
            }),
            event_type: wire.event_type,
            headers: wire.headers,
            topics: wire.topics,
        }),
        other => Err(HookAnswerError::Action(other.chars().take(40).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn answers_parse() {
        assert_eq!(parse_hook_answer(204, b""), Ok(HookAnswer::Accept));
        assert_eq!(
            parse_hook_answer(200, br#"{"action":"accept"}"#),
            Ok(HookAnswer::Accept)
        );
        assert_eq!(
            parse_hook_answer(200, br#"{"action":"reject","status":451,"reason":"no"}"#),
            Ok(HookAnswer::Reject {
                status: 451,
                reason: "no".into()
            })
        );
        assert_eq!(
            parse_hook_answer(
                200,
                br#"{"action":"modify","data":"x","type":null,"topics":["a","b"]}"#
            ),
            Ok(HookAnswer::Modify {
                data: Some(vec!["x".into()]),
                event_type: Some(None),
                headers: None,
                topics: Some(vec!["a".into(), "b".into()]),
            })
        );
        let keep = parse_hook_answer(200, br#"{"action":"modify","headers":{"h":"v"}}"#);
        assert!(
            matches!(
                keep,
                Ok(HookAnswer::Modify {
                    event_type: None,
                    ..
                })
            ),
            "{keep:?}"
        );
    }

    #[test]
    fn bad_answers_say_why() {
        assert_eq!(
            parse_hook_answer(500, b""),
            Err(HookAnswerError::Status(500))
        );
        assert_eq!(
            parse_hook_answer(302, b""),
            Err(HookAnswerError::Status(302))
        );
        assert!(matches!(
            parse_hook_answer(200, b"{"),
            Err(HookAnswerError::Body(_))
        ));
        assert!(matches!(
            parse_hook_answer(200, br#"{"action":"accept","extra":1}"#),
            Err(HookAnswerError::Body(_))
        ));
        assert_eq!(
            parse_hook_answer(200, br#"{"action":"drop"}"#),
            Err(HookAnswerError::Action("drop".into()))
        );
        assert_eq!(
            parse_hook_answer(200, br#"{"action":"reject","status":200}"#),
            Err(HookAnswerError::RejectStatus(200))
        );
    }

    proptest! {
        #[test]
        fn never_panics(status in any::<u16>(), body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_hook_answer(status, &body);
        }

        #[test]
        fn a_rejection_round_trips(status in 400u16..600, reason in "[ -~]{0,40}") {
            let body = serde_json::json!({"action": "reject", "status": status, "reason": reason});
            prop_assert_eq!(
                parse_hook_answer(200, body.to_string().as_bytes()),
                Ok(HookAnswer::Reject { status, reason })
            );
        }
    }
}
