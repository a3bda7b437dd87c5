//! Configuration: TOML file + environment + CLI flags, validated once at start.
//!
//! Sources, lowest precedence first:
//! 1. built-in defaults ([`model`], listed in `src/config/example.toml`);
//! 2. the TOML file from `--config PATH` or `SLUICEGATE_CONFIG`;
//! 3. `SLUICEGATE__SECTION__KEY=value` variables (name case-insensitive), e.g.
//!    `SLUICEGATE__SSE__HEARTBEAT_MS=2000`;
//! 4. the flag variables `SLUICEGATE_LISTEN`, `SLUICEGATE_SHARDS`, `SLUICEGATE_LOG`;
//! 5. `--set KEY=VALUE` flags, in order;
//! 6. the named flags `--listen`, `--shards`, `--cpus`, `--log`.
//!
//! Values from variables and `--set` are parsed as TOML (`200`, `true`, `[0, 1]`) and taken as
//! a string when they are not a TOML value (`127.0.0.1:9000`). Every source is written into
//! the table parsed from the file before one deserialization, so a typo in any of them hits
//! the same `deny_unknown_fields` check, and every error names the dotted key and its source:
//!
//! ```text
//! config: unknown key `sse.heartbeat_msx` (from --set); expected one of heartbeat_ms, ...
//! config: sse.heartbeat_ms: invalid type: string "abc", expected u64 (from SLUICEGATE__SSE__HEARTBEAT_MS)
//! config file /etc/sluicegate.toml: line 3: invalid basic string
//! ```
//!
//! How `main` uses it:
//!
//! ```no_run
//! use sluicegate::config::{self, Config, LoadOutcome};
//!
//! let config = match Config::load(std::env::args_os(), config::process_env()) {
//!     Ok(LoadOutcome::Run(config)) => config,
//!     Ok(LoadOutcome::CheckOnly(config)) => {
//!         print!("{}", config.to_toml());
//!         std::process::exit(0);
//!     }
//!     Ok(LoadOutcome::PrintSystemdUnit { .. }) => std::process::exit(0),
//!     // Prints clap's help/version (exit 0) or the one-line error (exit 2).
//!     Err(err) => err.exit(),
//! };
//! let shards = config.effective_shards();
//! # let _ = shards;
//! ```

mod cli;
mod decode;
mod error;
mod events_model;
mod hooks_model;
mod model;
mod overrides;
mod policy_model;
mod redis_model;
mod storage_model;
mod validate;
mod validate_policy;
mod validate_redis;
mod validate_webhooks;
mod webhook_model;

#[cfg(test)]
mod tests;

pub use cli::{parse_cpu_list, Cli, CpuList, SetArg, MAX_CPU_ID};
pub use error::{ConfigError, Origin};
pub use events_model::SystemEventsConfig;
pub use hooks_model::{FailurePolicy, HookConfig, HooksConfig};
pub use model::{
    parse_start_position, Config, HttpConfig, KafkaConfig, LogConfig, LogFormat,
    MemoryBrokerConfig, MeshConfig, ServerConfig, SseConfig, StartPosition, WsConfig,
};
pub use overrides::ENV_PREFIX;
pub use policy_model::{
    AnonymousMode, ApiKeyConfig, AuthConfig, EgressMode, JwtKeyConfig, LimitsConfig, Rate,
};
pub use redis_model::{RedisConfig, RedisMode, SinkOverflow};
pub use storage_model::{FsyncPolicy, StorageConfig, StorageMode, TopicRetention};
pub use validate::{online_cpus, MAX_PARTITIONS, MAX_SHARDS, MIN_RING_CAPACITY};
pub use webhook_model::{ReceiverConfig, SignatureScheme, WebhooksConfig};

use clap::Parser;
use overrides::{parse_value, Merged};
use std::ffi::OsString;
use std::path::PathBuf;
use toml::Value;

/// The annotated example configuration: every key with its default.
pub const EXAMPLE_TOML: &str = include_str!("example.toml");

/// What `main` should do with the loaded configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadOutcome {
    /// Start the gateway.
    Run(Config),
    /// `--check-config`: print [`Config::to_toml`] and exit 0.
    CheckOnly(Config),
    /// `--print-systemd-unit`: print a unit for this binary and config file, and exit 0.
    PrintSystemdUnit {
        config_file: Option<std::path::PathBuf>,
    },
}

/// The process environment as UTF-8 pairs, for [`Config::load`]. Variables whose name or
/// value is not UTF-8 are skipped (`std::env::vars` would panic on them).
pub fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
}

/// Variables that stand in for a named flag: (variable, key path, parse the value as TOML).
/// The shard count is parsed as TOML (an integer); listen address and filter are strings.
const FLAG_VARS: [(&str, &[&str], bool); 3] = [
    ("SLUICEGATE_LISTEN", &["server", "listen"], false),
    ("SLUICEGATE_SHARDS", &["server", "shards"], true),
    ("SLUICEGATE_LOG", &["log", "level"], false),
];

fn owned(path: &[&str]) -> Vec<String> {
    path.iter().map(|p| (*p).to_owned()).collect()
}

impl Config {
    /// Parse CLI args (first item = program name), read variables from `env` (not from
    /// `std::env`, so tests can pass their own), load the file, merge, deserialize, validate.
    pub fn load<I, S>(
        args: I,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<LoadOutcome, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args).map_err(ConfigError::Cli)?;
        let env: Vec<(String, String)> = env.into_iter().collect();
        let var = |name: &str| {
            env.iter()
                .find(|(n, v)| n == name && !v.is_empty())
                .map(|(_, v)| v.clone())
        };

        let file = cli
            .config
            .clone()
            .or_else(|| var("SLUICEGATE_CONFIG").map(PathBuf::from));
        let mut merged = match &file {
            Some(path) => Merged::from_file(path)?,
            None => Merged::default(),
        };
        merged.apply_env(&env)?;
        for (name, path, as_toml) in FLAG_VARS {
            if let Some(raw) = var(name) {
                let value = if as_toml {
                    parse_value(&raw)
                } else {
                    Value::String(raw)
                };
                merged.set(&owned(path), value, Origin::Env(name.to_owned()))?;
            }
        }
        for set in &cli.set {
            merged.set(&set.path, parse_value(&set.value), Origin::Set)?;
        }
        apply_flags(&cli, &mut merged)?;

        let config = decode::decode(&merged)?;
        config.validate().map_err(|err| {
            let origin = err.key().and_then(|key| {
                let path: Vec<&str> = key.split('.').collect();
                merged.origin_of(&path)
            });
            err.with_origin(origin)
        })?;
        Ok(if cli.print_systemd_unit {
            LoadOutcome::PrintSystemdUnit {
                config_file: cli.config.clone(),
            }
        } else if cli.check_config {
            LoadOutcome::CheckOnly(config)
        } else {
            LoadOutcome::Run(config)
        })
    }
}

/// Write the named flags (highest precedence) into the table.
fn apply_flags(cli: &Cli, merged: &mut Merged) -> Result<(), ConfigError> {
    if let Some(listen) = &cli.listen {
        let path = owned(&["server", "listen"]);
        merged.set(
            &path,
            Value::String(listen.clone()),
            Origin::Flag("--listen"),
        )?;
    }
    if let Some(shards) = cli.shards {
        let value = i64::try_from(shards).map_err(|_| ConfigError::Invalid {
            key: "server.shards".to_owned(),
            message: format!("{shards} is too large"),
            origin: Some(Origin::Flag("--shards")),
        })?;
        let path = owned(&["server", "shards"]);
        merged.set(&path, Value::Integer(value), Origin::Flag("--shards"))?;
    }
    if let Some(CpuList(cpus)) = &cli.cpus {
        // Ids are at most MAX_CPU_ID, so the conversion cannot fail; saturate rather than panic.
        let ids = cpus
            .iter()
            .map(|&cpu| Value::Integer(i64::try_from(cpu).unwrap_or(i64::MAX)))
            .collect();
        let path = owned(&["server", "cpus"]);
        merged.set(&path, Value::Array(ids), Origin::Flag("--cpus"))?;
    }
    if let Some(log) = &cli.log {
        let path = owned(&["log", "level"]);
        merged.set(&path, Value::String(log.clone()), Origin::Flag("--log"))?;
    }
    Ok(())
}
