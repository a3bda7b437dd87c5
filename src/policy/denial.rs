//! Why the policy refused a request. The delivery layer turns each into its HTTP answer
//! (401, 403, 413, 429 and their headers); the transports that come later (WebSocket acks,
//! webhooks) reuse the same reasons.
use std::time::Duration;

use super::principal::Action;
use crate::config::Rate;

/// The RFC 6750 `error` code of a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthErrorCode {
    /// No credential was presented where one is required (no `error=` attribute).
    Missing,
    /// The request carried a credential in a form that cannot be read.
    InvalidRequest,
    /// The credential was read but is not valid (bad signature, expired, unknown key...).
    InvalidToken,
}

impl AuthErrorCode {
    /// The `error=` value, if any.
    pub fn code(self) -> Option<&'static str> {
        match self {
            AuthErrorCode::Missing => None,
            AuthErrorCode::InvalidRequest => Some("invalid_request"),
            AuthErrorCode::InvalidToken => Some("invalid_token"),
        }
    }
}

/// Which limit refused a request (the `RateLimit-Policy` name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitName {
    PublishEvents,
    PublishBytes,
    TopicEvents,
    TopicBytes,
    IpConnections,
}

impl LimitName {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitName::PublishEvents => "publish-events",
            LimitName::PublishBytes => "publish-bytes",
            LimitName::TopicEvents => "topic-events",
            LimitName::TopicBytes => "topic-bytes",
            LimitName::IpConnections => "ip-connections",
        }
    }
}

/// A refusal by the policy.
#[derive(Debug, Clone, PartialEq)]
pub enum Denial {
    /// 401: no usable credential. `description` never contains the credential.
    Unauthenticated {
        code: AuthErrorCode,
        description: String,
    },
    /// 403: the principal may not do `action` on `topic`.
    Forbidden {
        principal: String,
        action: Action,
        topic: String,
    },
    /// 429: a token bucket is empty; a retry after `retry_after` may pass.
    RateLimited {
        limit: LimitName,
        rate: Rate,
        retry_after: Duration,
    },
    /// 429: too many connections open from one address (no refill time: one must close).
    TooManyConnections { limit: usize },
    /// 413: one request costs more than the limit's whole burst, so no retry can pass.
    OverBurst {
        limit: LimitName,
        cost: f64,
        burst: f64,
    },
}

impl Denial {
    pub fn missing_credential() -> Self {
        Denial::Unauthenticated {
            code: AuthErrorCode::Missing,
            description: "this gateway needs a credential: an API key or a JWT as \
                          `Authorization: Bearer ...`, an access_token query parameter or a cookie"
                .to_owned(),
        }
    }

    pub fn invalid_token(description: impl Into<String>) -> Self {
        Denial::Unauthenticated {
            code: AuthErrorCode::InvalidToken,
            description: description.into(),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Denial::Unauthenticated { .. } => 401,
            Denial::Forbidden { .. } => 403,
            Denial::RateLimited { .. } | Denial::TooManyConnections { .. } => 429,
            Denial::OverBurst { .. } => 413,
        }
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denial::Unauthenticated { description, .. } => {
                write!(f, "unauthenticated: {description}")
            }
            Denial::Forbidden {
                principal,
                action,
                topic,
            } => write!(
                f,
                "forbidden: `{principal}` may not {} topic `{topic}`",
                action.verb()
            ),
            Denial::RateLimited {
                limit, retry_after, ..
            } => write!(
                f,
                "rate limited by {}: retry in {} ms",
                limit.as_str(),
                retry_after.as_millis().max(1)
            ),
            Denial::TooManyConnections { limit } => write!(
                f,
                "too many open connections from this address (at most {limit})"
            ),
            Denial::OverBurst { limit, cost, burst } => write!(
                f,
                "this request costs {cost} against {}, more than its burst of {burst}: \
                 send less at once",
                limit.as_str()
            ),
        }
    }
}
