//! `[webhooks]`: receiving webhooks from providers (`POST /webhook-receiver?topic=T`).
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Topics that take signed webhooks: a valid signature with the topic's secret is the
    /// credential (no API key needed). Other topics take `/webhook-receiver` posts under the
    /// usual `[auth]` rules, unsigned. Default none.
    pub receivers: Vec<ReceiverConfig>,
    /// Standard Webhooks: how far `webhook-timestamp` may be from now, in seconds. Default 300.
    pub tolerance_s: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            receivers: Vec::new(),
            tolerance_s: 300,
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
