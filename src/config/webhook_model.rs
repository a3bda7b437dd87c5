//! `[webhooks]`: receiving webhooks from providers (`POST /webhook-receiver?topic=T`) and
//! delivering events to endpoints (the endpoints API `/webhooks` and the WebSub hub `/hub`).
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How a provider signs what it pushes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureScheme {
    /// WebSub: `X-Hub-Signature: sha256=<hex HMAC of the body>` (sha384, sha512 too).
    Websub,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`.
    StandardWebhooks,
}

/// `[webhooks]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Topics that take signed webhooks: a valid signature with the topic's secret is the
    /// credential (no API key needed). Other topics take `/webhook-receiver` posts under the
    /// usual `[auth]` rules, unsigned. Default none.
    pub receivers: Vec<ReceiverConfig>,
    /// Standard Webhooks: how far `webhook-timestamp` may be from now, in seconds. Default 300.
    pub tolerance_s: u64,
    /// Outbound delivery: addresses a callback may resolve to although they are loopback,
    /// private, link-local, multicast or otherwise internal (CIDRs such as `127.0.0.1/32` or
    /// `10.1.0.0/16`). Default none: every internal address is refused (SSRF guard).
    pub allow_cidrs: Vec<String>,
    /// A PEM file of CA certificates trusted for HTTPS endpoints besides the system's roots.
    pub extra_ca_file: Option<PathBuf>,
    /// One attempt's time limit (resolve, connect, TLS, request, answer), in ms. Default 10000.
    pub timeout_ms: u64,
    /// Connecting's time limit, in ms (within `timeout_ms`). Default 5000.
    pub connect_timeout_ms: u64,
    /// Seconds to wait before each retry of a failed delivery; its length is the retry budget.
    /// Default about a day: 5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800.
    pub retry_schedule_s: Vec<u64>,
    /// Random spread of each retry delay, as a fraction (0.2 = ±20%). Default 0.2.
    pub retry_jitter: f64,
    /// Longest `Retry-After` honoured, in seconds. Default 3600.
    pub max_retry_after_s: u64,
    /// Requests in flight at once per subscription (its partitions are delivered in parallel,
    /// each in order). Default 8.
    pub max_in_flight: usize,
    /// Idle keep-alive connections kept per receiver origin (scheme, host, port) on each
    /// shard; many subscriptions to one receiver share them. Default 256.
    pub max_idle_per_origin: usize,
    /// Connections open at once per receiver origin on each shard; more deliveries to it
    /// wait for one (within their timeout). Default 256.
    pub max_connections_per_origin: usize,
    /// An endpoint that has failed without a single success for this long is disabled (a
    /// `gateway.webhooks.disabled` record says so). Default 432000 (5 days).
    pub disable_after_s: u64,
    /// After a secret is rotated, the old one still signs deliveries for this long. Default
    /// 86400.
    pub rotation_overlap_s: u64,
    /// How often a subscription's delivery progress is written to the log, in ms. Default 1000.
    pub progress_interval_ms: u64,
    /// How often every subscription's whole state is written again, so retention of the
    /// state topic never deletes the last word on one, in s. Default 600.
    pub checkpoint_interval_s: u64,
    /// Attempts remembered per subscription for `GET /webhooks/{id}/attempts`. Default 50.
    pub attempts_kept: usize,
    /// WebSub hub: the lease given when a subscriber asks for none, in s. Default 864000.
    pub lease_default_s: u64,
    /// WebSub hub: the shortest lease granted, in s. Default 60.
    pub lease_min_s: u64,
    /// WebSub hub: the longest lease granted, in s. Default 2592000 (30 days).
    pub lease_max_s: u64,
    /// With Kafka: the Kafka topic that keeps the webhook subscriptions (and, with
    /// `.progress` appended, their delivery progress); created when missing. Gateways sharing
    /// a Kafka cluster but not their subscriptions need different names. Default
    /// "gateway.webhooks".
    pub kafka_state_topic: String,
    /// The gateway's public base URL, for WebSub `Link: rel="self"` and `rel="hub"` headers.
    /// Default `http://{server.listen}`.
    pub public_url: String,
}

impl WebhooksConfig {
    /// With Kafka: the topics keeping the subscriptions and their progress.
    pub fn kafka_state_topics(&self) -> (String, String) {
        (
            self.kafka_state_topic.clone(),
            format!("{}.progress", self.kafka_state_topic),
        )
    }
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            receivers: Vec::new(),
            tolerance_s: 300,
            allow_cidrs: Vec::new(),
            extra_ca_file: None,
            timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
            retry_schedule_s: vec![5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800],
            retry_jitter: 0.2,
            max_retry_after_s: 3600,
            max_in_flight: 8,
            max_idle_per_origin: 256,
            max_connections_per_origin: 256,
            disable_after_s: 5 * 86_400,
            rotation_overlap_s: 86_400,
            progress_interval_ms: 1000,
            checkpoint_interval_s: 600,
            attempts_kept: 50,
            lease_default_s: 864_000,
            lease_min_s: 60,
            lease_max_s: 2_592_000,
            kafka_state_topic: "gateway.webhooks".to_owned(),
            public_url: String::new(),
        }
    }
}

/// `[[webhooks.receivers]]`: one topic's signature check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub topic: String,
    pub scheme: SignatureScheme,
    /// The shared secret (Standard Webhooks: `whsec_<base64>`); or `secret_file`.
    #[serde(default)]
    pub secret: String,
    /// A file holding the secret (trailing whitespace ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}
