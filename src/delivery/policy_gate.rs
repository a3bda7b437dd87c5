//! Where an HTTP request meets the policy engine: what it presents (header, query, cookie),
//! and the HTTP answer to each refusal (401 with `WWW-Authenticate`, 403 naming the topic,
//! 429 with `Retry-After` and the IETF `RateLimit-Policy` / `RateLimit` headers, 413).
use std::sync::Arc;

use super::response::Response;
use crate::codec::http1::{Method, Request};
use crate::policy::denial::{Denial, LimitName};
use crate::policy::engine::{unix_now, Presented};
use crate::policy::principal::Principal;
use crate::shard::context::ShardContext;
use crate::telemetry::ShardMetrics;

/// The realm named in `WWW-Authenticate`.
const REALM: &str = "sluicegate";

/// What `req` presents to the policy. Cookies count on GET only: a cross-site form POST
/// carries the victim's cookies, so a cookie must never authorize a publish.
pub fn presented(req: &Request) -> Presented<'_> {
    Presented {
        authorization: req.header("authorization"),
        cookies: req
            .headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .map(|(_, v)| v.as_slice())
            .collect(),
        query: req.query(),
        cookie_allowed: matches!(req.method, Method::Get | Method::Head),
    }
}

/// Authenticate `req`; a refusal is already the answer to send.
pub fn authenticate(ctx: &ShardContext, req: &Request) -> Result<Arc<Principal>, Response> {
    ctx.policy
        .authenticate(&presented(req), unix_now())
        .map_err(|d| denied(ctx, &d))
}

/// The answer to a refusal (counted by kind).
pub fn denied(ctx: &ShardContext, denial: &Denial) -> Response {
    let m = ctx.metrics();
    match denial {
        Denial::Unauthenticated { .. } => ShardMetrics::add(&m.auth_failures_total, 1),
        Denial::Forbidden { .. } => ShardMetrics::add(&m.forbidden_total, 1),
        Denial::TooManyConnections { .. }
        | Denial::RateLimited {
            limit: LimitName::IpConnections,
            ..
        } => ShardMetrics::add(&m.connections_refused_by_ip_total, 1),
        Denial::RateLimited { .. } | Denial::OverBurst { .. } => {
            ShardMetrics::add(&m.publishes_rate_limited_total, 1)
        }
    }
    response_for(denial)
}

/// The HTTP answer to a refusal (pure).
pub fn response_for(denial: &Denial) -> Response {
    let resp = Response::text(denial.status(), denial.to_string());
    match denial {
        Denial::Unauthenticated { code, description } => {
            let mut challenge = format!("Bearer realm=\"{REALM}\"");
            if let Some(code) = code.code() {
                challenge.push_str(&format!(
                    ", error=\"{code}\", error_description=\"{}\"",
                    quoted_string_safe(description)
                ));
            }
            resp.with_header("www-authenticate", challenge)
        }
        Denial::RateLimited {
            limit,
            rate,
            retry_after,
        } => {
            let wait = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let burst = rate.effective_burst();
            // The draft's policy is a quota `q` per window `w` seconds; a bucket's quota is
            // its burst, and `w` is how long an empty bucket takes to refill it.
            let window = (burst / rate.per_s).ceil().max(1.0) as u64;
            let name = limit.as_str();
            resp.with_header("retry-after", wait.to_string())
                .with_header(
                    "ratelimit-policy",
                    format!("\"{name}\";q={};w={window}", burst.floor() as u64),
                )
                .with_header("ratelimit", format!("\"{name}\";r=0;t={wait}"))
        }
        Denial::TooManyConnections { .. } => resp.with_header("retry-after", "1"),
        Denial::Forbidden { .. } | Denial::OverBurst { .. } => resp,
    }
}

/// A description fit for a quoted-string: no quotes, backslashes or control characters.
fn quoted_string_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '\''
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rate;
    use crate::policy::denial::AuthErrorCode;
    use std::time::Duration;

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_missing_credential_gets_a_bare_challenge_and_a_bad_one_its_error() {
        let r = response_for(&Denial::missing_credential());
        assert_eq!(r.status, 401);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some("Bearer realm=\"sluicegate\"")
        );
        let r = response_for(&Denial::Unauthenticated {
            code: AuthErrorCode::InvalidToken,
            description: "token \"expired\"".into(),
        });
        assert_eq!(
            header(&r, "www-authenticate"),
            Some("Bearer realm=\"sluicegate\", error=\"invalid_token\", error_description=\"token 'expired'\"")
        );
    }

    #[test]
    fn rate_limited_answers_carry_retry_after_and_ratelimit_headers() {
        let r = response_for(&Denial::RateLimited {
            limit: LimitName::PublishEvents,
            rate: Rate::new(10.0, 20.0),
            retry_after: Duration::from_millis(1200),
        });
        assert_eq!(r.status, 429);
        assert_eq!(header(&r, "retry-after"), Some("2"));
        assert_eq!(
            header(&r, "ratelimit-policy"),
            Some("\"publish-events\";q=20;w=2")
        );
        assert_eq!(header(&r, "ratelimit"), Some("\"publish-events\";r=0;t=2"));
    }
}
