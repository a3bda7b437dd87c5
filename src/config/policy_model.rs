//! The policy settings: `[auth]` (who a request is and what it may touch) and `[limits]`
//! (token buckets and admission). Meaning, unit and default of each; checks in `validate`.

use serde::{Deserialize, Serialize};

/// What a request that presents no credential may do.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AnonymousMode {
    /// Anonymous requests get `anonymous_publish` / `anonymous_subscribe` only while no
    /// credential (API key or JWT key) is configured, and then only on a loopback listener: a
    /// non-loopback `server.listen` with no credentials stops the start.
    #[default]
    Auto,
    /// Anonymous requests get `anonymous_publish` / `anonymous_subscribe` on any listener
    /// (an explicit opt-in to an open gateway).
    Allow,
    /// Every request needs a credential.
    Deny,
}

/// `[auth]`: credentials (API keys, JWT keys), where they are read from, and what anonymous
/// requests may do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `auto`, `allow` or `deny` (see [`AnonymousMode`]). Default "auto".
    pub anonymous: AnonymousMode,
    /// Topic patterns anonymous requests may publish to. Default `["**"]` (every topic).
    pub anonymous_publish: Vec<String>,
    /// Topic patterns anonymous requests may subscribe to. Default `["**"]`.
    pub anonymous_subscribe: Vec<String>,
    /// Query parameter a token may come in (for clients that cannot set headers); "" turns
    /// it off. Default "access_token".
    pub query_param: String,
    /// Cookie a token may come in, on subscriptions (GET) only; "" turns it off.
    /// Default "sluicegate_token".
    pub cookie: String,
    /// Seconds of clock skew allowed on a JWT's `exp` and `nbf`. Default 30.
    pub leeway_s: u64,
    /// Required JWT `iss`; "" does not check it. Default "".
    pub issuer: String,
    /// Required JWT `aud` (one of the token's audiences); "" does not check it. Default "".
    pub audience: String,
    /// JWT claim holding `{"publish": [...], "subscribe": [...]}` topic patterns. Default
    /// "sluicegate".
    pub claim: String,
    /// Verified tokens remembered per shard (by hash, until their `exp`), so a keep-alive
    /// client's token is verified once. Default 4096.
    pub token_cache_entries: usize,
    /// API keys, `[[auth.api_keys]]`.
    pub api_keys: Vec<ApiKeyConfig>,
    /// Keys that verify JWTs, `[[auth.jwt_keys]]`.
    pub jwt_keys: Vec<JwtKeyConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            anonymous: AnonymousMode::Auto,
            anonymous_publish: vec!["**".to_owned()],
            anonymous_subscribe: vec!["**".to_owned()],
            query_param: "access_token".to_owned(),
            cookie: "sluicegate_token".to_owned(),
            leeway_s: 30,
            issuer: String::new(),
            audience: String::new(),
            claim: "sluicegate".to_owned(),
            token_cache_entries: 4096,
            api_keys: Vec::new(),
            jwt_keys: Vec::new(),
        }
    }
}

impl AuthConfig {
    /// Whether any credential is configured.
    pub fn has_credentials(&self) -> bool {
        !self.api_keys.is_empty() || !self.jwt_keys.is_empty()
    }
}

/// One API key: who presents it and what it may do. The key itself is never in the config,
/// only its SHA-256 (`printf %s "$KEY" | sha256sum`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeyConfig {
    /// The principal's name (logs, rate-limit keys). Required, unique.
    pub name: String,
    /// SHA-256 of the key, 64 hex digits. Required, unique.
    pub sha256: String,
    /// Topic patterns it may publish to.
    pub publish: Vec<String>,
    /// Topic patterns it may subscribe to.
    pub subscribe: Vec<String>,
    /// Replaces `limits.publish_events` for this key.
    pub publish_events: Option<Rate>,
    /// Replaces `limits.publish_bytes` for this key.
    pub publish_bytes: Option<Rate>,
    /// May manage the gateway: the webhook endpoints API (`/webhooks`). Default false.
    pub admin: bool,
}

/// One JWT verification key, from exactly one of `secret`, `secret_file`, `public_key_pem`,
/// `pem_file`, `jwks_file`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JwtKeyConfig {
    /// The `kid` a token names to pick this key; "" = the key for tokens without a `kid`
    /// (at most one). Ignored for `jwks_file`, whose keys carry their own `kid`s.
    pub kid: String,
    /// Algorithms a token verified by this key may use (HS256, HS384, HS512, RS256, ES256,
    /// EdDSA). Required: no algorithm is trusted by default.
    pub algorithms: Vec<String>,
    /// HMAC secret, inline.
    pub secret: String,
    /// HMAC secret, read from a file (trailing newline dropped).
    pub secret_file: String,
    /// Public key (RSA, EC or Ed25519), inline PEM.
    pub public_key_pem: String,
    /// Public key, from a PEM file.
    pub pem_file: String,
    /// A JWKS file (`{"keys": [...]}`); reloaded on SIGHUP and when the file changes.
    pub jwks_file: String,
}

/// A token-bucket limit: `per_s` tokens a second, up to `burst` saved. `per_s = 0` means no
/// limit.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Rate {
    /// Sustained rate, tokens per second; 0 = unlimited.
    pub per_s: f64,
    /// Tokens that can be spent at once; 0 = one second's worth (`per_s`).
    pub burst: f64,
}

impl Rate {
    /// A limit of `per_s` with `burst`.
    pub fn new(per_s: f64, burst: f64) -> Self {
        Self { per_s, burst }
    }

    /// Whether this limits anything.
    pub fn is_limited(&self) -> bool {
        self.per_s > 0.0
    }

    /// The burst in effect (`burst`, or one second's worth when 0).
    pub fn effective_burst(&self) -> f64 {
        if self.burst > 0.0 {
            self.burst
        } else {
            self.per_s
        }
    }
}

/// What a subscriber's connection does with an event over its egress limit.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum EgressMode {
    /// Queue it and send it when the bucket allows (the queue's slow-consumer bound applies).
    #[default]
    Delay,
    /// Skip it; the next event sent is preceded by an `event: dropped` notice with the count
    /// and the id to resume from to get them.
    Drop,
    /// Close the stream with a final notice (the client may resume with its last id).
    Disconnect,
}

/// `[limits]`: token buckets on ingress and egress, and admission limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Events a principal may publish (anonymous: per client IP), across all shards.
    pub publish_events: Rate,
    /// Bytes of event data a principal may publish, across all shards.
    pub publish_bytes: Rate,
    /// Events one topic may receive, across all shards and publishers.
    pub topic_events: Rate,
    /// Bytes of event data one topic may receive.
    pub topic_bytes: Rate,
    /// New connections one client IP may open.
    pub ip_connections: Rate,
    /// Open connections one client IP may hold at once; 0 = unlimited. Default 0.
    pub max_connections_per_ip: usize,
    /// Events per second sent to one subscriber connection.
    pub egress_events: Rate,
    /// Bytes per second sent to one subscriber connection.
    pub egress_bytes: Rate,
    /// `delay`, `drop` or `disconnect`: what an event over the egress limit does.
    /// Default "delay".
    pub egress_over_limit: EgressMode,
    /// Milliseconds between rebalances of the shard shares of the limits that hold across
    /// shards (publish and topic limits). Default 100.
    pub rebalance_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            publish_events: Rate::default(),
            publish_bytes: Rate::default(),
            topic_events: Rate::default(),
            topic_bytes: Rate::default(),
            ip_connections: Rate::default(),
            max_connections_per_ip: 0,
            egress_events: Rate::default(),
            egress_bytes: Rate::default(),
            egress_over_limit: EgressMode::Delay,
            rebalance_ms: 100,
        }
    }
}
