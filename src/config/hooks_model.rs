//! `[hooks]`: sync HTTP hooks asked before a publish is accepted or a stream opens.
use serde::{Deserialize, Serialize};

/// What a hook's failure (error, time limit, open circuit) means.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Go on as if the hook accepted.
    Open,
    /// Refuse with 503.
    #[default]
    Closed,
}

/// `[hooks]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    /// `[[hooks.publish]]`: asked, in order, before a publish is accepted.
    pub publish: Vec<HookConfig>,
    /// `[[hooks.subscribe]]`: asked, in order, before a stream opens.
    pub subscribe: Vec<HookConfig>,
}

/// One HTTP hook.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// A name for logs and refusals; default the URL.
    #[serde(default)]
    pub name: String,
    /// Where the JSON request is POSTed (http or https; internal addresses allowed: hooks are
    /// the operator's own services).
    pub url: String,
    /// Topic patterns the hook is asked about. Default ["**"].
    #[serde(default = "all_topics")]
    pub topics: Vec<String>,
    /// The latency budget of one call, in ms; past it the call failed. Default 200.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// `closed` (default: refuse with 503) or `open` (go on) when the hook fails.
    #[serde(default)]
    pub failure: FailurePolicy,
    /// Failures in a row that open the circuit (the hook is skipped, its failure policy
    /// answering). Default 5.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open circuit skips the hook, in ms (then one trial call). Default 5000.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
}

fn all_topics() -> Vec<String> {
    vec!["**".to_owned()]
}

fn default_timeout_ms() -> u64 {
    200
}

fn default_breaker_failures() -> u32 {
    5
}

fn default_breaker_open_ms() -> u64 {
    5000
}
