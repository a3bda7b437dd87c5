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
    /// `/topics/{topic}/ws`, the topic still percent-encoded: a WebSocket of one topic.
    TopicWs(&'a str),
    /// `/ws?topic=a&topic=b`: a WebSocket of several topics.
    Ws,
    /// `/webhook-receiver?topic=T`: a webhook provider's delivery.
    WebhookReceiver,
    /// `/webhooks...`: the webhook endpoints API; the path after `/webhooks`.
    Webhooks(&'a str),
    /// `/hub`: the WebSub hub.
    Hub,
    NotFound,
}

impl Route<'_> {
    /// The methods the route answers (for 405 and `Allow`).
    pub fn allowed(&self) -> &'static str {
        match self {
            Route::Health | Route::Ready | Route::Metrics => "GET, HEAD",
            Route::TopicEvents(_) => "GET, POST, OPTIONS",
            Route::MultiEvents => "GET, OPTIONS",
            Route::TopicWs(_) | Route::Ws => "GET",
            Route::WebhookReceiver | Route::Hub => "POST",
            // The API answers 405 itself, per resource.
            Route::Webhooks(_) => "GET, POST, PATCH, DELETE",
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
            Route::TopicWs(_) | Route::Ws => method == Method::Get,
            Route::WebhookReceiver | Route::Hub => method == Method::Post,
            Route::Webhooks(_) => matches!(
                method,
                Method::Get | Method::Post | Method::Patch | Method::Delete
            ),
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
        "/ws" => Route::Ws,
        "/webhook-receiver" => Route::WebhookReceiver,
        "/hub" => Route::Hub,
        _ if path == "/webhooks" || path.starts_with("/webhooks/") => {
            Route::Webhooks(&path["/webhooks".len()..])
        }
        _ => {
            let Some(rest) = path.strip_prefix("/topics/") else {
                return Route::NotFound;
            };
            let one_segment = |t: &str| !t.contains('/');
            match (rest.strip_suffix("/events"), rest.strip_suffix("/ws")) {
                (Some(topic), _) if one_segment(topic) => Route::TopicEvents(topic),
                (_, Some(topic)) if one_segment(topic) => Route::TopicWs(topic),
                _ => Route::NotFound,
            }
        }
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
        assert_eq!(route("/topics/a.b/ws"), Route::TopicWs("a.b"));
        assert_eq!(route("/ws"), Route::Ws);
        assert_eq!(route("/topics/a/b/ws"), Route::NotFound);
        assert!(!route("/ws").allows(Method::Post));
        assert_eq!(route("/webhooks"), Route::Webhooks(""));
        assert_eq!(
            route("/webhooks/wh_1/replay"),
            Route::Webhooks("/wh_1/replay")
        );
        assert_eq!(route("/webhooksx"), Route::NotFound);
        assert_eq!(route("/hub"), Route::Hub);
    }
}
