//! A shard's sync hooks, run in order: native plugins first, then the configured HTTP hooks.
//! Each call has its latency budget and circuit breaker; a failure (error, timeout, open
//! breaker) is settled by the hook's policy: fail open (as if it accepted) or closed (503).
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use super::breaker::Breaker;
use super::{
    Hook, HookError, HookFuture, HookSettings, PublishChange, PublishHookRequest, PublishVerdict,
    SubscribeHookRequest, SubscribeVerdict,
};
use crate::telemetry::latency::{Stage, StageLatencies};
use crate::telemetry::ShardMetrics;

/// Why hooks refused a request: the status and message the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRefusal {
    pub status: u16,
    pub reason: String,
}

struct Slot {
    hook: Rc<dyn Hook>,
    settings: HookSettings,
    breaker: RefCell<Breaker>,
}

impl Slot {
    fn new(hook: Rc<dyn Hook>) -> Self {
        let settings = hook.settings();
        Self {
            breaker: RefCell::new(Breaker::new(
                settings.breaker_failures,
                settings.breaker_open,
            )),
            hook,
            settings,
        }
    }
}

/// A publish after the hooks: what to publish, and to which topics when a hook routed it.
#[derive(Debug)]
pub struct Hooked {
    pub req: PublishHookRequest,
    /// `Some`: publish to these topics instead of `req.topic`.
    pub routes: Option<Vec<String>>,
}

/// One shard's hooks.
#[derive(Default)]
pub struct Hooks {
    publish: Vec<Slot>,
    subscribe: Vec<Slot>,
}

impl Hooks {
    /// `publish` and `subscribe` hooks, each list in the order they run.
    pub fn new(publish: Vec<Rc<dyn Hook>>, subscribe: Vec<Rc<dyn Hook>>) -> Self {
        Self {
            publish: publish.into_iter().map(Slot::new).collect(),
            subscribe: subscribe.into_iter().map(Slot::new).collect(),
        }
    }

    pub fn has_publish_hooks(&self) -> bool {
        !self.publish.is_empty()
    }

    pub fn has_subscribe_hooks(&self) -> bool {
        !self.subscribe.is_empty()
    }

    /// Run the publish hooks over `req`; what to publish (changed or not), or the refusal.
    pub async fn on_publish(
        &self,
        mut req: PublishHookRequest,
        metrics: &ShardMetrics,
        latency: &StageLatencies,
    ) -> Result<Hooked, HookRefusal> {
        let mut routes = None;
        for slot in &self.publish {
            if !slot.hook.applies_to(&req.topic) {
                continue;
            }
            match call(slot, slot.hook.on_publish(&req), metrics, latency).await {
                Ok(PublishVerdict::Accept) => {}
                Ok(PublishVerdict::Modify(change)) => apply(&mut req, &mut routes, change),
                Ok(PublishVerdict::Reject { status, reason }) => {
                    return Err(rejected(slot, status, &reason, metrics))
                }
                Err(e) => failed(slot, &e)?,
            }
        }
        Ok(Hooked { req, routes })
    }

    /// Run the subscribe hooks; `Ok` when the stream may open.
    pub async fn on_subscribe(
        &self,
        req: &SubscribeHookRequest,
        metrics: &ShardMetrics,
        latency: &StageLatencies,
    ) -> Result<(), HookRefusal> {
        for slot in &self.subscribe {
            if !req.topics.iter().any(|t| slot.hook.applies_to(t)) {
                continue;
            }
            match call(slot, slot.hook.on_subscribe(req), metrics, latency).await {
                Ok(SubscribeVerdict::Accept) => {}
                Ok(SubscribeVerdict::Reject { status, reason }) => {
                    return Err(rejected(slot, status, &reason, metrics))
                }
                Err(e) => failed(slot, &e)?,
            }
        }
        Ok(())
    }
}

/// One call under the slot's breaker and time limit.
async fn call<T>(
    slot: &Slot,
    fut: HookFuture<'_, T>,
    metrics: &ShardMetrics,
    latency: &StageLatencies,
) -> Result<T, HookError> {
    let started = Instant::now();
    if !slot.breaker.borrow_mut().allow(started) {
        ShardMetrics::add(&metrics.hook_failures_total, 1);
        return Err(HookError("circuit open after repeated failures".into()));
    }
    ShardMetrics::add(&metrics.hook_calls_total, 1);
    let limit = slot.settings.timeout;
    let outcome = futures_lite::future::or(async { Some(fut.await) }, async {
        glommio::timer::sleep(limit).await;
        None
    })
    .await;
    latency.record(Stage::Hook, started.elapsed());
    let result = match outcome {
        Some(r) => r,
        None => Err(HookError(format!(
            "no answer within its budget of {} ms",
            limit.as_millis()
        ))),
    };
    let mut breaker = slot.breaker.borrow_mut();
    match &result {
        Ok(_) => breaker.succeeded(),
        Err(e) => {
            ShardMetrics::add(&metrics.hook_failures_total, 1);
            if breaker.failed(Instant::now()) {
                tracing::warn!(hook = slot.hook.name(), error = %e, open_for_ms = slot.settings.breaker_open.as_millis() as u64, "hook failing; its circuit is open");
            }
        }
    }
    result
}

fn rejected(slot: &Slot, status: u16, reason: &str, metrics: &ShardMetrics) -> HookRefusal {
    ShardMetrics::add(&metrics.hook_rejections_total, 1);
    HookRefusal {
        // Only refusals: a hook answering "reject with 200" still refuses.
        status: if (400..600).contains(&status) {
            status
        } else {
            403
        },
        reason: format!("refused by hook `{}`: {reason}", slot.hook.name()),
    }
}

/// A failed call: passes with a fail-open hook, refuses with 503 otherwise.
fn failed(slot: &Slot, e: &HookError) -> Result<(), HookRefusal> {
    if slot.settings.fail_open {
        return Ok(());
    }
    Err(HookRefusal {
        status: 503,
        reason: format!(
            "hook `{}` failed ({e}) and fails closed; retry later",
            slot.hook.name()
        ),
    })
}

/// Apply a hook's change; later hooks see the changed publish (a routed one under its first
/// new topic).
fn apply(req: &mut PublishHookRequest, routes: &mut Option<Vec<String>>, change: PublishChange) {
    if let Some(data) = change.data {
        req.data = data;
    }
    if let Some(t) = change.event_type {
        req.event_type = t;
    }
    if let Some(h) = change.headers {
        req.headers = h;
    }
    if let Some(topics) = change.topics {
        if let Some(first) = topics.first() {
            req.topic = first.clone();
        }
        *routes = Some(topics);
    }
}
