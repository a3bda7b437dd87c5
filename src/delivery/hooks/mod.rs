//! Sync hooks (plugins): code asked before a publish is accepted (it may accept, reject, change
//! the event or send it to other topics) and before a stream opens (accept or reject).
//!
//! [`Hook`] is the in-process plugin trait a library user implements; the HTTP hook of
//! `[[hooks.publish]]` / `[[hooks.subscribe]]` ([`http::HttpHook`]) is one implementation.
//! [`runner::Hooks`] runs a shard's hooks in order, each under its time limit and circuit
//! breaker, applying its failure policy (open: as if it accepted; closed: 503) when it errs.
//! Async hooks need no trait: a webhook endpoint on a system topic is one.
pub mod breaker;
pub mod http;
pub mod runner;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

/// What a hook's future resolves to.
pub type HookFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, HookError>> + 'a>>;

/// A hook could not decide (unreachable, bad answer): its failure policy applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

/// A publish as a hook sees it (after authentication, the ACL, validation and rate limits).
#[derive(Debug, Clone)]
pub struct PublishHookRequest {
    pub topic: String,
    pub event_type: Option<String>,
    pub key: Option<String>,
    /// The `Sluicegate-Header-*` headers (names lower case).
    pub headers: Vec<(String, Bytes)>,
    /// One entry per event (an NDJSON batch has several).
    pub data: Vec<Bytes>,
    pub principal: String,
    pub client: IpAddr,
    /// `http`, `ws` or `webhook`.
    pub via: String,
}

/// A stream about to open.
#[derive(Debug, Clone)]
pub struct SubscribeHookRequest {
    pub topics: Vec<String>,
    pub principal: String,
    pub client: IpAddr,
    /// `sse` or `ws`.
    pub transport: String,
}

/// What a publish hook decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishVerdict {
    Accept,
    /// Refuse the publish: the client gets `status` (4xx or 5xx) and `reason`.
    Reject {
        status: u16,
        reason: String,
    },
    /// Accept it changed (each field `None` keeps what was published).
    Modify(PublishChange),
}

/// A hook's change to a publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishChange {
    /// New data, one entry per event.
    pub data: Option<Vec<Bytes>>,
    /// New event type (`Some(None)` removes it).
    pub event_type: Option<Option<String>>,
    /// New headers (replace all).
    pub headers: Option<Vec<(String, Bytes)>>,
    /// Publish to these topics instead (routing; each must be a valid, non-reserved name).
    pub topics: Option<Vec<String>>,
}

/// What a subscribe hook decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeVerdict {
    Accept,
    Reject { status: u16, reason: String },
}

/// How a hook is run.
#[derive(Debug, Clone, Copy)]
pub struct HookSettings {
    /// The latency budget of one call; past it the call counts as failed.
    pub timeout: Duration,
    /// When the hook fails (error, timeout, open breaker): accept (`true`) or refuse with 503.
    pub fail_open: bool,
    /// Failures in a row that open the breaker.
    pub breaker_failures: u32,
    /// How long an open breaker skips the hook.
    pub breaker_open: Duration,
}

impl Default for HookSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(200),
            fail_open: false,
            breaker_failures: 5,
            breaker_open: Duration::from_secs(5),
        }
    }
}

/// A sync hook. Every method has a default that accepts, so a plugin implements what it needs.
/// Hooks run on the shard that handles the request (one instance per shard, made by the
/// factory given to [`Plugins::add`]), so they may keep `!Send` state.
pub trait Hook {
    /// A name for logs and errors.
    fn name(&self) -> &str;

    /// Time limit, failure policy and breaker.
    fn settings(&self) -> HookSettings {
        HookSettings::default()
    }

    /// Whether the hook wants to see publishes to (or subscriptions of) `topic`.
    fn applies_to(&self, _topic: &str) -> bool {
        true
    }

    fn on_publish<'a>(&'a self, _req: &'a PublishHookRequest) -> HookFuture<'a, PublishVerdict> {
        Box::pin(std::future::ready(Ok(PublishVerdict::Accept)))
    }

    fn on_subscribe<'a>(
        &'a self,
        _req: &'a SubscribeHookRequest,
    ) -> HookFuture<'a, SubscribeVerdict> {
        Box::pin(std::future::ready(Ok(SubscribeVerdict::Accept)))
    }
}

/// A shard's hooks: its native plugins' instances, then the HTTP hooks of `config`
/// (sharing one client that may reach internal addresses: hooks are the operator's services).
pub fn build(
    native: &[Rc<dyn Hook>],
    config: &crate::config::HooksConfig,
    gateway: &crate::config::Config,
) -> Result<runner::Hooks, String> {
    let mut publish = native.to_vec();
    let mut subscribe = native.to_vec();
    if !config.publish.is_empty() || !config.subscribe.is_empty() {
        let client = Rc::new(http::client(gateway)?);
        for c in &config.publish {
            publish.push(Rc::new(http::HttpHook::from_config(c, client.clone())?));
        }
        for c in &config.subscribe {
            subscribe.push(Rc::new(http::HttpHook::from_config(c, client.clone())?));
        }
    }
    Ok(runner::Hooks::new(publish, subscribe))
}

/// Makes a shard's instance of a hook (called once per shard, on that shard's thread).
pub type HookFactory = Arc<dyn Fn(usize) -> Rc<dyn Hook> + Send + Sync>;

/// Native hooks a library user gives [`crate::Gateway::start_with`]; they run before the
/// configured HTTP hooks.
#[derive(Clone, Default)]
pub struct Plugins {
    pub(crate) factories: Vec<HookFactory>,
}

impl Plugins {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a hook: `make(shard)` builds the instance each shard runs.
    pub fn with(mut self, make: impl Fn(usize) -> Rc<dyn Hook> + Send + Sync + 'static) -> Self {
        self.factories.push(Arc::new(make));
        self
    }
}
