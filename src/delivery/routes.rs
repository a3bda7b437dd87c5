//! Which handler a request path goes to (pure; no I/O).
use crate::codec::http1::Method;

/// The gateway's endpoints.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    Health,
    Ready,
    Metrics,
    /// `/topics/{topic}/events`, the topic still percent-encoded.
    TopicEvents(&'a str),
    /// `/events?topic=a&topic=b`
    MultiEvents,
    NotFound,
}

impl Route<'_> {
    /// The methods the route answers (for 405 and `Allow`).
    pub fn allowed(&self) -> &'static str {
        match self {
            Route::Health | Route::Ready | Route::Metrics => "GET, HEAD",
            Route::TopicEvents(_) => "GET, POST, OPTIONS",
            Route::MultiEvents => "GET, OPTIONS",
            Route::NotFound => "",
        }
    }

    pub fn allows(&self, method: Method) -> bool {
        match self {
            Route::Health | Route::Ready | Route::Metrics => {
                matches!(method, Method::Get | Method::Head)
            }
            Route::TopicEvents(_) => matches!(method, Method::Get | Method::Post | Method::Options),
            Route::MultiEvents => matches!(method, Method::Get | Method::Options),
            Route::NotFound => false,
        }
    }
}

/// Route a request path (without its query).
pub fn route(path: &str) -> Route<'_> {
    match path {
        "/healthz" => Route::Health,
        "/readyz" => Route::Ready,
        "/metrics" => Route::Metrics,
        "/events" => Route::MultiEvents,
        _ => match path
            .strip_prefix("/topics/")
            .and_then(|rest| rest.strip_suffix("/events"))
        {
            Some(topic) if !topic.contains('/') => Route::TopicEvents(topic),
            _ => Route::NotFound,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/topics/a.b/events"), Route::TopicEvents("a.b"));
        assert_eq!(
            route("/topics/bad%20name/events"),
            Route::TopicEvents("bad%20name")
        );
        assert_eq!(route("/topics//events"), Route::TopicEvents(""));
        assert_eq!(route("/topics/a/b/events"), Route::NotFound);
        assert_eq!(route("/events"), Route::MultiEvents);
        assert_eq!(route("/healthz"), Route::Health);
        assert_eq!(route("/nope"), Route::NotFound);
        assert!(!route("/events").allows(Method::Post));
        assert!(route("/topics/a/events").allows(Method::Post));
    }
}
