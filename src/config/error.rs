//! Configuration errors: one line each, naming the dotted key, what is wrong and where the
//! value came from.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from, so an error can point the operator at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The TOML file at this path.
    File(PathBuf),
    /// An environment variable, by name (`SLUICEGATE__SSE__HEARTBEAT_MS`, `SLUICEGATE_LISTEN`).
    Env(String),
    /// A `--set KEY=VALUE` flag.
    Set,
    /// A named command-line flag such as `--listen`.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Env(name) => f.write_str(name),
            Origin::Set => f.write_str("--set"),
            Origin::Flag(flag) => f.write_str(flag),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Command-line parsing failed, or `--help`/`--version` was asked for. Call
    /// [`ConfigError::exit`] to print clap's text and exit with its code.
    #[error("{0}")]
    Cli(clap::Error),
    /// The config file could not be read.
    #[error("config file {}: cannot read: {err}", path.display())]
    ReadFile {
        /// The path given with `--config` or `SLUICEGATE_CONFIG`.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        err: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {}: {}{message}", path.display(), line_prefix(*line))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error, when the parser reported a position.
        line: Option<usize>,
        /// What the parser said.
        message: String,
    },
    /// An environment variable or `--set` could not be applied (bad key syntax, or it tries to
    /// go inside a value that is not a table).
    #[error("config: {message} (from {origin})")]
    BadOverride {
        /// What is wrong.
        message: String,
        /// The variable or flag.
        origin: Origin,
    },
    /// A key no section knows: a typo, or a setting this version does not have.
    #[error("config: unknown key `{key}`{}; expected one of {expected}", from_suffix(.origin))]
    UnknownKey {
        /// Dotted path of the key, e.g. `sse.heartbeat_msx`.
        key: String,
        /// Where it was set.
        origin: Option<Origin>,
        /// The keys that are valid at that level, comma separated.
        expected: String,
    },
    /// A known key with a value of the wrong type or out of range.
    #[error("config: {key}: {message}{}", from_suffix(.origin))]
    Invalid {
        /// Dotted path of the key, e.g. `sse.heartbeat_ms`.
        key: String,
        /// What is wrong with the value.
        message: String,
        /// Where the value was set; `None` when it is the built-in default or unknown.
        origin: Option<Origin>,
    },
}

fn line_prefix(line: Option<usize>) -> String {
    line.map(|n| format!("line {n}: ")).unwrap_or_default()
}

fn from_suffix(origin: &Option<Origin>) -> String {
    origin
        .as_ref()
        .map(|o| format!(" (from {o})"))
        .unwrap_or_default()
}

impl ConfigError {
    /// Dotted key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Process exit code for this error: clap's own (0 for `--help`/`--version`, 2 for a bad
    /// flag), 2 for every configuration error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Cli(err) => err.exit_code(),
            _ => 2,
        }
    }

    /// Print the error (clap's help/version text goes to stdout) and exit the process with
    /// [`ConfigError::exit_code`]. Meant for `main` only.
    pub fn exit(&self) -> ! {
        match self {
            ConfigError::Cli(err) => err.exit(),
            other => {
                eprintln!("{other}");
                std::process::exit(other.exit_code())
            }
        }
    }

    /// Attach `origin` to a key error that does not have one yet.
    pub(crate) fn with_origin(self, origin: Option<Origin>) -> Self {
        match self {
            ConfigError::Invalid {
                key,
                message,
                origin: None,
            } => ConfigError::Invalid {
                key,
                message,
                origin,
            },
            other => other,
        }
    }
}
