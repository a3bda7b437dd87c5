//! Unit tests for `Config::load`: precedence of the sources, error messages, the example file.

use super::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A TOML file in the temp dir, removed on drop.
struct TempToml(PathBuf);

impl TempToml {
    fn new(text: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "sluicegate-config-unit-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).expect("write temp config");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempToml {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(args: &[&str], vars: &[(&str, &str)]) -> Result<LoadOutcome, ConfigError> {
    let argv = std::iter::once("sluicegate").chain(args.iter().copied());
    Config::load(argv, env(vars))
}

fn run(args: &[&str], vars: &[(&str, &str)]) -> Config {
    match load(args, vars) {
        Ok(LoadOutcome::Run(config)) => config,
        other => panic!("expected Run, got {other:?}"),
    }
}

fn error(args: &[&str], vars: &[(&str, &str)]) -> String {
    match load(args, vars) {
        Err(err) => err.to_string(),
        Ok(outcome) => panic!("expected an error, got {outcome:?}"),
    }
}

#[test]
fn no_sources_gives_defaults() {
    assert_eq!(run(&[], &[]), Config::default());
}

#[test]
fn precedence_default_file_env_cli() {
    let file =
        TempToml::new("[sse]\nheartbeat_ms = 1000\nretry_ms = 1000\nmax_queue_bytes = 1000\n");
    let path = file.path().to_str().expect("utf-8 temp path");
    let vars = [
        ("SLUICEGATE__SSE__RETRY_MS", "2222"),
        ("SLUICEGATE__SSE__MAX_QUEUE_BYTES", "3333"),
    ];
    let config = run(
        &["--config", path, "--set", "sse.max_queue_bytes=4444"],
        &vars,
    );
    // Untouched by any source: default.
    assert_eq!(config.sse.max_topics_per_subscription, 32);
    // File only: file.
    assert_eq!(config.sse.heartbeat_ms, 1000);
    // File and env: env.
    assert_eq!(config.sse.retry_ms, 2222);
    // File, env and CLI: CLI.
    assert_eq!(config.sse.max_queue_bytes, 4444);
}

#[test]
fn config_path_from_env_and_flag_wins() {
    let from_env = TempToml::new("[mesh]\nring_capacity = 32\n");
    let from_flag = TempToml::new("[mesh]\nring_capacity = 64\n");
    let env_path = from_env.path().to_str().expect("utf-8");
    let flag_path = from_flag.path().to_str().expect("utf-8");
    let vars = [("SLUICEGATE_CONFIG", env_path)];
    assert_eq!(run(&[], &vars).mesh.ring_capacity, 32);
    assert_eq!(run(&["--config", flag_path], &vars).mesh.ring_capacity, 64);
}

#[test]
fn flag_variables_sit_between_generic_env_and_flags() {
    let vars = [
        ("SLUICEGATE__SERVER__LISTEN", "127.0.0.1:1000"),
        ("SLUICEGATE_LISTEN", "127.0.0.1:2000"),
        ("SLUICEGATE_SHARDS", "2"),
        ("SLUICEGATE_LOG", "warn"),
    ];
    let config = run(&[], &vars);
    assert_eq!(config.server.listen.port(), 2000);
    assert_eq!(config.server.shards, 2);
    assert_eq!(config.log.level, "warn");
    let config = run(
        &[
            "--listen",
            "127.0.0.1:3000",
            "--shards",
            "1",
            "--log",
            "debug",
        ],
        &vars,
    );
    assert_eq!(config.server.listen.port(), 3000);
    assert_eq!(config.server.shards, 1);
    assert_eq!(config.log.level, "debug");
}

#[test]
fn named_flags_beat_set() {
    let config = run(
        &[
            "--set",
            "server.shards=2",
            "--shards",
            "1",
            "--set",
            "log.level=warn",
        ],
        &[],
    );
    assert_eq!(config.server.shards, 1);
    assert_eq!(config.log.level, "warn");
}

#[test]
fn set_values_parse_as_toml_or_string() {
    let config = run(
        &[
            "--set",
            "server.listen=127.0.0.1:9000",
            "--set",
            "server.shards=2",
            "--set",
            "server.cpus=[0, 1]",
            "--set",
            "http.cors_allow_origins=[\"*\"]",
        ],
        &[],
    );
    assert_eq!(config.server.listen.port(), 9000);
    assert_eq!(config.server.cpus, [0, 1]);
    assert_eq!(config.http.cors_allow_origins, ["*"]);
}

#[test]
fn cpus_flag_sets_server_cpus() {
    let config = run(&["--shards", "1", "--cpus", "0"], &[]);
    assert_eq!(config.server.cpus, [0]);
    let err = error(&["--cpus", "0,,1"], &[]);
    assert!(err.contains("empty item"), "{err}");
}

#[test]
fn check_config_returns_check_only() {
    match load(&["--check-config"], &[]) {
        Ok(LoadOutcome::CheckOnly(config)) => assert_eq!(config, Config::default()),
        other => panic!("expected CheckOnly, got {other:?}"),
    }
}

#[test]
fn unknown_key_in_file_names_key_file_and_choices() {
    let file = TempToml::new("[sse]\nheartbeat_msx = 1\n");
    let path = file.path().to_str().expect("utf-8");
    let err = error(&["--config", path], &[]);
    assert!(
        err.starts_with("config: unknown key `sse.heartbeat_msx`"),
        "{err}"
    );
    assert!(err.contains(&format!("(from file {path})")), "{err}");
    assert!(
        err.contains("expected one of cut_off_grace_ms, heartbeat_ms, max_queue_bytes"),
        "{err}"
    );
}

#[test]
fn unknown_section_lists_sections() {
    let err = error(&["--set", "sse2.x=1"], &[]);
    assert_eq!(
        err,
        "config: unknown key `sse2` (from --set); expected one of auth, hooks, http, kafka, limits, log, \
         memory_broker, mesh, redis, server, sse, storage, system_events, webhooks, ws"
    );
}

#[test]
fn unknown_key_in_env_and_set() {
    let err = error(&[], &[("SLUICEGATE__SSE__HEARTBEAT_MSX", "1")]);
    assert!(
        err.starts_with(
            "config: unknown key `sse.heartbeat_msx` (from SLUICEGATE__SSE__HEARTBEAT_MSX)"
        ),
        "{err}"
    );
    let err = error(&["--set", "sse.heartbeat_msx=200"], &[]);
    assert!(
        err.starts_with("config: unknown key `sse.heartbeat_msx` (from --set); expected one of"),
        "{err}"
    );
}

#[test]
fn wrong_type_names_key_and_source() {
    let err = error(&[], &[("SLUICEGATE__SSE__HEARTBEAT_MS", "abc")]);
    assert!(
        err.starts_with("config: sse.heartbeat_ms: invalid type"),
        "{err}"
    );
    assert!(err.contains("\"abc\""), "{err}");
    assert!(
        err.ends_with("(from SLUICEGATE__SSE__HEARTBEAT_MS)"),
        "{err}"
    );

    let file = TempToml::new("[server]\nlisten = 8080\n");
    let path = file.path().to_str().expect("utf-8");
    let err = error(&["--config", path], &[]);
    assert!(
        err.starts_with("config: server.listen: invalid type"),
        "{err}"
    );
    assert!(err.ends_with(&format!("(from file {path})")), "{err}");

    let err = error(&["--listen", "nowhere"], &[]);
    assert!(err.starts_with("config: server.listen: "), "{err}");
    assert!(err.ends_with("(from --listen)"), "{err}");

    let err = error(&["--set", "sse.retry_ms=-1"], &[]);
    assert!(err.starts_with("config: sse.retry_ms: "), "{err}");

    let err = error(&["--set", "sse=3"], &[]);
    assert_eq!(
        err,
        "config: sse: expected a table, found an integer (from --set)"
    );
}

#[test]
fn validate_errors_carry_the_source() {
    let err = error(&["--set", "sse.heartbeat_ms=0"], &[]);
    assert_eq!(
        err,
        "config: sse.heartbeat_ms: must be at least 1, got 0 (from --set)"
    );
    let err = error(&["--shards", "5000"], &[]);
    assert_eq!(
        err,
        "config: server.shards: must be at most 1024, got 5000 (from --shards)"
    );
    let err = error(&[], &[("SLUICEGATE_LOG", "x=nope")]);
    assert!(err.starts_with("config: log.level: "), "{err}");
    assert!(err.ends_with("(from SLUICEGATE_LOG)"), "{err}");
}

#[test]
fn syntax_error_gives_file_and_line() {
    let file = TempToml::new("[server]\nshards = 1\nlisten = \"unterminated\n");
    let path = file.path().to_str().expect("utf-8");
    let err = error(&["--config", path], &[]);
    assert!(
        err.starts_with(&format!("config file {path}: line 3: ")),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err}");
}

#[test]
fn missing_file_is_a_read_error() {
    let err = error(&["--config", "/nonexistent/sluicegate.toml"], &[]);
    assert!(
        err.starts_with("config file /nonexistent/sluicegate.toml: cannot read: "),
        "{err}"
    );
}

#[test]
fn clap_errors_and_help_surface_with_exit_codes() {
    let Err(err) = load(&["--help"], &[]) else {
        panic!("--help should return a Cli error");
    };
    assert!(matches!(err, ConfigError::Cli(_)));
    assert_eq!(err.exit_code(), 0);
    let Err(err) = load(&["--no-such-flag"], &[]) else {
        panic!("bad flag should fail");
    };
    assert_eq!(err.exit_code(), 2);
    let Err(err) = load(&["--set", "no-equals"], &[]) else {
        panic!("bad --set should fail");
    };
    assert!(err.to_string().contains("expected KEY=VALUE"), "{err}");
}

#[test]
fn example_file_equals_defaults_and_lists_every_key_with_a_comment() {
    let example: toml::Table = EXAMPLE_TOML.parse().expect("example parses");
    let config: Config = toml::Value::Table(example.clone())
        .try_into()
        .expect("example deserializes");
    assert_eq!(config, Config::default());
    // `default` would hide a missing key, so compare the key sets too.
    let defaults = match toml::Value::try_from(Config::default()) {
        Ok(toml::Value::Table(table)) => table,
        other => panic!("defaults serialize to a table: {other:?}"),
    };
    assert_eq!(example, defaults, "every key present with its default");
    // Each `key = value` line follows a comment line.
    let lines: Vec<&str> = EXAMPLE_TOML.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        if line.contains(" = ") && !line.starts_with('#') {
            let previous = i.checked_sub(1).and_then(|j| lines.get(j));
            assert!(
                previous.is_some_and(|p| p.starts_with('#')),
                "no comment above `{line}`"
            );
        }
    }
}

#[test]
fn to_toml_round_trips() {
    let mut config = Config::default();
    config.server.cpus = vec![0];
    config.server.shards = 1;
    config.http.cors_allow_origins = vec!["*".into()];
    let text = config.to_toml();
    let back: Config = toml::from_str(&text).expect("parses back");
    assert_eq!(back, config);
    assert!(text.contains("[memory_broker]"), "{text}");
}

/// `[redis]` in broker mode with `extra` settings (each `key=value`, TOML values).
fn redis_error(extra: &[&str]) -> String {
    let mut args = vec![
        "--set",
        "redis.url=\"redis://127.0.0.1:6379\"",
        "--set",
        "redis.mode=\"broker\"",
        "--set",
        "redis.topics=[\"orders\"]",
    ];
    for e in extra {
        args.push("--set");
        args.push(e);
    }
    error(&args, &[])
}

#[test]
fn redis_key_templates_must_keep_every_partition_apart() {
    let err = redis_error(&["redis.key_template=\"{topic}{partition}\""]);
    assert!(
        err.contains("redis.key_template") && err.contains("no topic name has"),
        "{err}"
    );
    let err = redis_error(&["redis.key_template=\"s:{topic}-{partition}\""]);
    assert!(err.contains("no topic name has"), "{err}");
    let err = redis_error(&["redis.key_template=\"{instance}:{topic}:{partition}\""]);
    assert!(err.contains("only {topic} and {partition}"), "{err}");
    let err = redis_error(&["redis.key_template=\"{topic}\""]);
    assert!(err.contains("must contain both"), "{err}");
    let ok = run(
        &[
            "--set",
            "redis.url=\"redis://127.0.0.1:6379\"",
            "--set",
            "redis.key_template=\"{partition}/{topic}\"",
        ],
        &[],
    );
    assert_eq!(ok.redis.stream_key("a.b", 3), "3/a.b");
}

#[test]
fn redis_sizes_are_bounded_and_modes_do_not_clash() {
    let err = redis_error(&["redis.sink_queue_events=100000000000"]);
    assert!(
        err.contains("redis.sink_queue_events") && err.contains("between"),
        "{err}"
    );
    let err = redis_error(&["redis.read_count=0"]);
    assert!(err.contains("redis.read_count"), "{err}");
    let err = redis_error(&[
        "kafka.bootstrap=[\"127.0.0.1:9092\"]",
        "kafka.topics=[\"t\"]",
    ]);
    assert!(err.contains("redis.mode"), "{err}");
    let err = redis_error(&["redis.url=\"rediss://127.0.0.1:6379\""]);
    assert!(err.contains("TLS"), "{err}");
    let err = redis_error(&["redis.topics=[\"gateway.x\"]"]);
    assert!(err.contains("system topic"), "{err}");
}
