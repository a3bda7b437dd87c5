//! The policy engine's two halves: [`Policy`], built once at start and shared by every shard
//! (API keys, JWT keys, the anonymous principal, the cross-shard boards), and
//! [`ShardPolicy`], each shard's own state (token cache, its share of the rate limits).
//! Transports call `authenticate`, `authorize`, `admit_publish`, `admit_connection` and
//! `egress_limiter`; nothing else of the policy is visible to them.
use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::acl::Acl;
use super::admission::{IpPermit, IpTable};
use super::api_keys::digest;
use super::bucket::NEVER;
use super::credential::{extract, BearerErrorCode, Credential};
use super::denial::{AuthErrorCode, Denial, LimitName};
use super::egress::EgressLimiter;
use super::jwt::{check_crypto_backend, JwtKeys, JwtSettings, KeySet, VerifiedToken};
use super::principal::{Action, Kind, Principal};
use super::receivers::{Receiver, Receivers};
use super::reloadable::Reloadable;
use super::split::{LocalQuotas, QuotaBoard, QuotaKey, QuotaKind};
use super::token_cache::TokenCache;
use crate::config::{Config, Rate};

/// Most rate-limit keys (principals, topics) one shard keeps buckets for.
const MAX_QUOTA_KEYS: usize = 65_536;
/// How often the JWT key files are checked for changes.
const KEY_FILE_POLL: Duration = Duration::from_secs(1);

/// The policy every shard shares (read-only after start, but for the JWT keys' reload and
/// the admission table).
pub struct Policy {
    /// API keys, anonymous access, rate limits: swapped whole by a reload (SIGHUP).
    current: RwLock<Arc<Reloadable>>,
    /// Moves with every reload, so shards take the new `current` (and drop cached tokens).
    generation: AtomicU64,
    jwt: Option<Arc<JwtKeys>>,
    jwt_settings: JwtSettings,
    query_param: String,
    cookie: String,
    token_cache_entries: usize,
    leeway_s: u64,
    ip_table: Option<Arc<IpTable>>,
    board: Arc<QuotaBoard>,
    shards: usize,
    /// Topics that take signed webhooks; swapped whole when SIGHUP re-reads secret files.
    receivers: std::sync::RwLock<Arc<Receivers>>,
    /// What the receivers are loaded from (SIGHUP loads them again).
    webhooks: crate::config::WebhooksConfig,
}

/// What a request presents, read from its head.
#[derive(Debug, Default)]
pub struct Presented<'a> {
    pub authorization: Option<&'a [u8]>,
    pub cookies: Vec<&'a [u8]>,
    /// The query string (without `?`).
    pub query: &'a str,
    /// Cookies count only where a cross-site request cannot act with them (subscriptions).
    pub cookie_allowed: bool,
}

impl Policy {
    /// Build the policy from the configuration (loads key files, compiles ACLs); the error says
    /// which setting is wrong.
    pub fn from_config(config: &Config, shards: usize) -> Result<Arc<Self>, String> {
        let auth = &config.auth;
        let limits = &config.limits;
        let current = Reloadable::from_config(config)?;
        let jwt = if auth.jwt_keys.is_empty() {
            None
        } else {
            // Fail now, not at the first token, if the JWT library has no crypto backend.
            check_crypto_backend()?;
            let keys = Arc::new(JwtKeys::new(auth.jwt_keys.clone())?);
            let file_based = auth.jwt_keys.iter().any(|k| {
                !(k.secret_file.is_empty() && k.pem_file.is_empty() && k.jwks_file.is_empty())
            });
            if file_based {
                keys.spawn_file_watcher(KEY_FILE_POLL)
                    .map_err(|e| format!("cannot start the jwt key file watcher: {e}"))?;
            }
            Some(keys)
        };
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(current)),
            generation: AtomicU64::new(0),
            jwt,
            jwt_settings: JwtSettings::from_config(auth),
            query_param: auth.query_param.clone(),
            cookie: auth.cookie.clone(),
            token_cache_entries: auth.token_cache_entries,
            leeway_s: auth.leeway_s,
            ip_table: IpTable::new(limits.max_connections_per_ip, limits.ip_connections),
            board: Arc::new(QuotaBoard::new(shards)),
            shards,
            receivers: std::sync::RwLock::new(Arc::new(Receivers::from_config(
                &config.webhooks,
                &config.limits,
            )?)),
            webhooks: config.webhooks.clone(),
        }))
    }

    /// The signed-webhook receiver of `topic`, if one is configured.
    pub fn webhook_receiver(&self, topic: &str) -> Option<Arc<Receiver>> {
        // A poisoned lock only means a reload panicked; the receivers it holds are whole.
        let receivers = match self.receivers.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        receivers.get(topic)
    }

    /// Re-read the key and secret files (SIGHUP): the JWT keys, and the webhook receivers'
    /// secrets. Says what was reloaded; on an error what is in use stays.
    pub fn reload(&self) -> Result<Vec<String>, String> {
        let mut reloaded = Vec::new();
        if let Some(keys) = &self.jwt {
            keys.reload().map_err(|e| format!("jwt keys: {e}"))?;
            reloaded.push("jwt key files".to_owned());
        }
        if !self.webhooks.receivers.is_empty() {
            let fresh = Receivers::from_config(&self.webhooks, &self.current().limits)?;
            let n = fresh.count();
            match self.receivers.write() {
                Ok(mut r) => *r = Arc::new(fresh),
                Err(poisoned) => *poisoned.into_inner() = Arc::new(fresh),
            }
            reloaded.push(format!("{n} webhook receiver secret(s)"));
        }
        Ok(reloaded)
    }

    /// What is in force now.
    pub fn current(&self) -> Arc<Reloadable> {
        // A poisoned lock only means a reload panicked; what it holds is whole.
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The reload generation (moves with every reload of the config).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Take the API keys, anonymous access and rate limits of `config` (SIGHUP re-read the
    /// config file), then re-read the key and secret files; what changed. On an error what
    /// is in use stays.
    pub fn reload_from(&self, config: &Config) -> Result<Vec<String>, String> {
        let fresh = Reloadable::from_config(config)?;
        let mut changed = fresh.changes_from(&self.current());
        {
            let mut current = match self.current.write() {
                Ok(c) => c,
                Err(poisoned) => poisoned.into_inner(),
            };
            *current = Arc::new(fresh);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        changed.extend(self.reload()?);
        Ok(changed)
    }

    /// Whether any limit that holds across shards is configured (the shards then rebalance).
    pub fn has_shared_limits(&self) -> bool {
        let current = self.current();
        let l = &current.limits;
        self.shards > 1
            && ([
                l.topic_events,
                l.topic_bytes,
                l.publish_events,
                l.publish_bytes,
            ]
            .iter()
            .any(Rate::is_limited)
                || self.api_keys_have_limits())
    }

    fn api_keys_have_limits(&self) -> bool {
        self.current()
            .api_keys
            .principals()
            .any(|p| p.publish_events.is_limited() || p.publish_bytes.is_limited())
    }

    pub fn rebalance_interval(&self) -> Duration {
        Duration::from_millis(self.current().limits.rebalance_ms.max(1))
    }
}

/// Seconds since the Unix epoch (what JWT times are in).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One shard's side of the policy.
pub struct ShardPolicy {
    shared: Arc<Policy>,
    cache: RefCell<TokenCache>,
    /// The JWT key set this shard verifies with, and its generation.
    keys: RefCell<Option<(u64, Arc<KeySet>)>>,
    quotas: RefCell<LocalQuotas>,
    /// The reloadable policy as this shard last took it, and its generation.
    current: RefCell<(u64, Arc<Reloadable>)>,
}

impl ShardPolicy {
    pub fn new(shared: Arc<Policy>, shard: usize) -> Self {
        Self {
            cache: RefCell::new(TokenCache::new(shared.token_cache_entries)),
            keys: RefCell::new(None),
            current: RefCell::new((shared.generation(), shared.current())),
            quotas: RefCell::new(LocalQuotas::new(
                shard,
                shared.board.clone(),
                MAX_QUOTA_KEYS,
            )),
            shared,
        }
    }

    /// Run `f` over the reloadable policy in force: this shard's copy, taken again when a
    /// reload moved the generation (one atomic read per request otherwise, and no reference
    /// count traffic). `f` must not call back into this (it runs under a borrow).
    fn with_current<R>(&self, f: impl FnOnce(&Reloadable) -> R) -> R {
        let generation = self.shared.generation();
        if self.current.borrow().0 != generation {
            *self.current.borrow_mut() = (generation, self.shared.current());
            // Tokens verified under the old policy carry its limits: verify them again.
            self.cache.borrow_mut().clear();
        }
        f(&self.current.borrow().1)
    }

    /// Who the request is: the principal of its credential, or the anonymous principal when it
    /// presents none (and anonymous access is on).
    pub fn authenticate(
        &self,
        presented: &Presented<'_>,
        now_unix: u64,
    ) -> Result<Arc<Principal>, Denial> {
        let p = &self.shared;
        let cookie = if presented.cookie_allowed {
            p.cookie.as_str()
        } else {
            ""
        };
        let credential = extract(
            presented.authorization,
            &presented.cookies,
            presented.query,
            &p.query_param,
            cookie,
        )
        .map_err(|e| Denial::Unauthenticated {
            code: match e.bearer_error_code() {
                BearerErrorCode::InvalidRequest => AuthErrorCode::InvalidRequest,
                BearerErrorCode::InvalidToken => AuthErrorCode::InvalidToken,
            },
            description: e.to_string(),
        })?;
        match credential {
            None => self
                .with_current(|c| c.anonymous.clone())
                .ok_or_else(Denial::missing_credential),
            Some(Credential { token, .. }) => self.principal_of(&token, now_unix),
        }
    }

    fn principal_of(&self, token: &str, now_unix: u64) -> Result<Arc<Principal>, Denial> {
        let p = &self.shared;
        let token_digest = digest(token);
        if let Some(principal) = self.with_current(|c| c.api_keys.lookup(&token_digest).cloned()) {
            return Ok(principal);
        }
        let Some(jwt) = &p.jwt else {
            return Err(Denial::invalid_token("unknown API key"));
        };
        if token.bytes().filter(|&b| b == b'.').count() != 2 {
            return Err(Denial::invalid_token("unknown API key"));
        }
        let generation = jwt.generation();
        if let Some(principal) = self
            .cache
            .borrow_mut()
            .get(&token_digest, generation, now_unix)
        {
            return Ok(principal);
        }
        let keys = self.key_set(jwt, generation);
        let verified = keys
            .verify(token, &p.jwt_settings, now_unix)
            .map_err(|e| Denial::invalid_token(e.description()))?;
        let principal = Arc::new(self.jwt_principal(verified)?);
        self.cache
            .borrow_mut()
            .insert(token_digest, principal.clone(), now_unix);
        Ok(principal)
    }

    /// The shard's key set, fetched again only when the shared generation moved.
    fn key_set(&self, jwt: &JwtKeys, generation: u64) -> Arc<KeySet> {
        let mut keys = self.keys.borrow_mut();
        match &*keys {
            Some((g, set)) if *g == generation => set.clone(),
            _ => {
                let (g, set) = jwt.current();
                *keys = Some((g, set.clone()));
                set
            }
        }
    }

    fn jwt_principal(&self, token: VerifiedToken) -> Result<Principal, Denial> {
        let (publish_events, publish_bytes) =
            self.with_current(|c| (c.limits.publish_events, c.limits.publish_bytes));
        let acl = |list: &[String]| {
            Acl::parse(list)
                .map_err(|e| Denial::invalid_token(format!("bad sluicegate claim: {e}")))
        };
        let name = format!("jwt:{}", token.sub.as_deref().unwrap_or("-"));
        Ok(Principal {
            kind: Kind::Jwt,
            name: Arc::from(name),
            sub: token.sub.map(Arc::from),
            publish: Arc::new(acl(&token.publish)?),
            subscribe: Arc::new(acl(&token.subscribe)?),
            expires_at: token
                .exp
                .map(|exp| exp.saturating_add(self.shared.leeway_s)),
            publish_events,
            publish_bytes,
            admin: false,
        })
    }

    /// May `principal` do `action` on every one of `topics`? A multi-topic subscription needs
    /// all of them.
    pub fn authorize<T: AsRef<str>>(
        principal: &Principal,
        action: Action,
        topics: &[T],
    ) -> Result<(), Denial> {
        match topics
            .iter()
            .find(|t| !principal.allows(action, t.as_ref()))
        {
            None => Ok(()),
            Some(topic) => Err(Denial::Forbidden {
                principal: principal.name.to_string(),
                action,
                topic: topic.as_ref().to_owned(),
            }),
        }
    }

    /// Charge a publish of `events` events and `bytes` bytes to `topic` against the principal's
    /// and the topic's limits. Anonymous publishers are limited per client address.
    pub fn admit_publish(
        &self,
        principal: &Principal,
        client: IpAddr,
        topic: &str,
        events: usize,
        bytes: usize,
        now: Instant,
    ) -> Result<(), Denial> {
        let (topic_events, topic_bytes) =
            self.with_current(|c| (c.limits.topic_events, c.limits.topic_bytes));
        let checks = [
            (
                QuotaKind::PrincipalEvents,
                principal.publish_events,
                events,
                LimitName::PublishEvents,
            ),
            (
                QuotaKind::PrincipalBytes,
                principal.publish_bytes,
                bytes,
                LimitName::PublishBytes,
            ),
            (
                QuotaKind::TopicEvents,
                topic_events,
                events,
                LimitName::TopicEvents,
            ),
            (
                QuotaKind::TopicBytes,
                topic_bytes,
                bytes,
                LimitName::TopicBytes,
            ),
        ];
        if !checks.iter().any(|(_, rate, _, _)| rate.is_limited()) {
            return Ok(());
        }
        let principal_key: Arc<str> = match principal.kind {
            Kind::Anonymous => Arc::from(format!("anonymous@{client}")),
            _ => principal.name.clone(),
        };
        let topic_key: Arc<str> = Arc::from(topic);
        let mut quotas = self.quotas.borrow_mut();
        for (kind, rate, cost, limit) in checks {
            if !rate.is_limited() {
                continue;
            }
            let name = match kind {
                QuotaKind::PrincipalEvents | QuotaKind::PrincipalBytes => principal_key.clone(),
                QuotaKind::TopicEvents | QuotaKind::TopicBytes => topic_key.clone(),
            };
            let key = QuotaKey { kind, name };
            if let Err(retry_after) = quotas.check(&key, rate, cost as f64, now) {
                return Err(if retry_after == NEVER {
                    Denial::OverBurst {
                        limit,
                        cost: cost as f64,
                        burst: rate.effective_burst(),
                    }
                } else {
                    Denial::RateLimited {
                        limit,
                        rate,
                        retry_after,
                    }
                });
            }
        }
        Ok(())
    }

    /// Admit a new connection from `ip` (per-address limits); `None` when none are set.
    pub fn admit_connection(&self, ip: IpAddr, now: Instant) -> Result<Option<IpPermit>, Denial> {
        match &self.shared.ip_table {
            None => Ok(None),
            Some(table) => table.admit(ip, now).map(Some),
        }
    }

    /// The egress buckets for a new subscriber connection, when egress limits are set.
    pub fn egress_limiter(&self, now: Instant) -> Option<EgressLimiter> {
        self.with_current(|c| EgressLimiter::from_config(&c.limits, now))
    }

    /// Move this shard's shares of the cross-shard limits toward its demand.
    pub fn rebalance(&self, now: Instant) {
        self.quotas.borrow_mut().rebalance(now);
    }
}
