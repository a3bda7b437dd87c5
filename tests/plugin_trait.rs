//! Library level: a user embeds Sluicegate with native plugins (`sluicegate::plugins::Hook`)
//! through `Gateway::start_with`, and the gateway asks them like the HTTP hooks: a publish
//! hook rejects one topic and upper-cases another's data, a subscribe hook refuses a topic,
//! each shard runs its own instance (the factory is called per shard), and a hook that errs
//! is settled by its failure policy.
mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{free_port, http_request, SseClient};
use sluicegate::config::{Config, StorageMode};
use sluicegate::plugins::{
    Hook, HookError, HookFuture, HookSettings, Plugins, PublishChange, PublishHookRequest,
    PublishVerdict, SubscribeHookRequest, SubscribeVerdict,
};
use sluicegate::Gateway;

/// The plugin: per-shard state (`Cell`, not thread-safe on purpose).
struct Policy {
    seen: Cell<u64>,
}

impl Hook for Policy {
    fn name(&self) -> &str {
        "policy"
    }

    fn settings(&self) -> HookSettings {
        HookSettings {
            fail_open: true,
            ..HookSettings::default()
        }
    }

    fn on_publish<'a>(&'a self, req: &'a PublishHookRequest) -> HookFuture<'a, PublishVerdict> {
        Box::pin(async move {
            self.seen.set(self.seen.get() + 1);
            match req.topic.as_str() {
                "blocked" => Ok(PublishVerdict::Reject {
                    status: 422,
                    reason: format!("{} may not publish here", req.principal),
                }),
                "shout" => Ok(PublishVerdict::Modify(PublishChange {
                    data: Some(
                        req.data
                            .iter()
                            .map(|d| Bytes::from(String::from_utf8_lossy(d).to_uppercase()))
                            .collect(),
                    ),
                    ..PublishChange::default()
                })),
                "flaky" => Err(HookError("the plugin's store is down".into())),
                _ => Ok(PublishVerdict::Accept),
            }
        })
    }

    fn on_subscribe<'a>(
        &'a self,
        req: &'a SubscribeHookRequest,
    ) -> HookFuture<'a, SubscribeVerdict> {
        Box::pin(async move {
            Ok(if req.topics.iter().any(|t| t == "private") {
                SubscribeVerdict::Reject {
                    status: 403,
                    reason: "private topic".into(),
                }
            } else {
                SubscribeVerdict::Accept
            })
        })
    }
}

#[test]
fn native_plugins_reject_change_and_refuse() {
    let made = Arc::new(AtomicUsize::new(0));
    let made2 = made.clone();
    let plugins = Plugins::new().with(move |_shard| {
        made2.fetch_add(1, Ordering::Relaxed);
        Rc::new(Policy { seen: Cell::new(0) }) as Rc<dyn Hook>
    });
    let mut config = Config::default();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    config.server.listen = addr;
    config.server.shards = 2;
    config.storage.mode = StorageMode::Memory;
    let gw = Gateway::start_with(config, plugins).expect("gateway starts");
    assert_eq!(made.load(Ordering::Relaxed), 2, "one instance per shard");

    let post = |topic: &str, body: &str| {
        let r = http_request(
            addr,
            "POST",
            &format!("/topics/{topic}/events"),
            &[],
            body.as_bytes(),
        )
        .expect("post");
        (r.status, r.text())
    };
    let (status, text) = post("blocked", "x");
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("anonymous may not publish here"), "{text}");
    let mut shout = SseClient::connect(addr, "/topics/shout/events", &[]);
    assert_eq!(post("shout", "quiet please").0, 200);
    assert_eq!(
        shout
            .next_event(Duration::from_secs(5))
            .expect("event")
            .data,
        "QUIET PLEASE"
    );
    assert_eq!(post("flaky", "x").0, 200, "fails open");
    assert_eq!(post("plain", "x").0, 200);
    let refused = SseClient::open(addr, "/topics/private/events", &[]).expect("open");
    assert_eq!(refused.status(), 403);

    let stop = gw.shutdown_handle();
    stop.request();
    gw.join().expect("clean stop");
}
