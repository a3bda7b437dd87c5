//! Integration tests for the configuration through its public entry point, `Config::load`,
//! with real temp files (the binary is not spawned).

use sluicegate::config::{parse_cpu_list, Config, ConfigError, CpuList, LoadOutcome};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A config file in the temp dir with a unique name, removed on drop.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(text: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "sluicegate-config-cli-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).expect("write temp config");
        Self(path)
    }

    fn arg(&self) -> String {
        self.0.to_str().expect("utf-8 temp path").to_owned()
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn load(args: &[&str], env: &[(&str, &str)]) -> Result<LoadOutcome, ConfigError> {
    Config::load(
        std::iter::once("sluicegate").chain(args.iter().copied()),
        env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Config {
    match load(args, env) {
        Ok(LoadOutcome::Run(config)) => config,
        other => panic!("expected Run, got {other:?}"),
    }
}

fn error(args: &[&str], env: &[(&str, &str)]) -> String {
    match load(args, env) {
        Err(err) => err.to_string(),
        Ok(outcome) => panic!("expected an error, got {outcome:?}"),
    }
}

const FILE: &str = r#"
[server]
listen = "0.0.0.0:7000"
shards = 1
drain_timeout_ms = 100

[http]
cors_allow_origins = ["https://app.example.com"]
max_body_bytes = 4096

[sse]
heartbeat_ms = 500

[log]
level = "warn,sluicegate=debug"

# 0.0.0.0 without credentials: an open gateway, so it has to be asked for.
[auth]
anonymous = "allow"
"#;

#[test]
fn file_env_and_flags_combine() {
    let file = TempConfig::new(FILE);
    let config = run(
        &[
            "--config",
            &file.arg(),
            "--listen",
            "127.0.0.1:7001",
            "--set",
            "mesh.ring_capacity=128",
        ],
        &[
            ("SLUICEGATE__HTTP__MAX_BODY_BYTES", "8192"),
            ("SLUICEGATE__SSE__HEARTBEAT_MS", "2000"),
            ("SLUICEGATE__SERVER__LISTEN", "127.0.0.1:7002"),
            ("UNRELATED", "x"),
        ],
    );
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:7001");
    assert_eq!(config.server.shards, 1);
    assert_eq!(config.server.drain_timeout_ms, 100);
    assert_eq!(config.http.cors_allow_origins, ["https://app.example.com"]);
    assert_eq!(config.http.max_body_bytes, 8192);
    assert_eq!(config.sse.heartbeat_ms, 2000);
    assert_eq!(config.mesh.ring_capacity, 128);
    assert_eq!(config.log.level, "warn,sluicegate=debug");
    // Keys no source mentions keep their defaults.
    assert_eq!(config.sse.retry_ms, 2000);
    assert_eq!(config.memory_broker, Default::default());
}

#[test]
fn check_config_output_reloads_to_the_same_config() {
    let file = TempConfig::new(FILE);
    let config = match load(&["--config", &file.arg(), "--check-config"], &[]) {
        Ok(LoadOutcome::CheckOnly(config)) => config,
        other => panic!("expected CheckOnly, got {other:?}"),
    };
    let printed = TempConfig::new(&config.to_toml());
    assert_eq!(run(&["--config", &printed.arg()], &[]), config);
}

#[test]
fn errors_name_the_dotted_key_and_source() {
    let file = TempConfig::new("[http]\nmax_headers = \"many\"\n");
    let err = error(&["--config", &file.arg()], &[]);
    assert!(
        err.starts_with("config: http.max_headers: invalid type"),
        "{err}"
    );
    assert!(err.contains(&file.arg()), "{err}");

    let err = error(&[], &[("SLUICEGATE__MESH__RING", "1")]);
    assert!(
        err.starts_with("config: unknown key `mesh.ring` (from SLUICEGATE__MESH__RING)"),
        "{err}"
    );
    assert!(err.contains("max_backlog, ring_capacity"), "{err}");

    let err = error(&["--set", "memory_broker.partitions=0"], &[]);
    assert_eq!(
        err,
        "config: memory_broker.partitions: must be between 1 and 1024, got 0 (from --set)"
    );

    let err = error(&["--set", "http.cors_allow_origins=[\"example.com\"]"], &[]);
    assert!(
        err.starts_with("config: http.cors_allow_origins: "),
        "{err}"
    );
}

#[test]
fn file_syntax_error_is_one_line_with_the_line_number() {
    let file = TempConfig::new("[sse]\nheartbeat_ms = 1\nheartbeat_ms = 2\n");
    let err = error(&["--config", &file.arg()], &[]);
    assert!(
        err.starts_with(&format!("config file {}: line 3: ", file.arg())),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn cpus_list_parsing() {
    assert_eq!(parse_cpu_list("0,2-3"), Ok(CpuList(vec![0, 2, 3])));
    assert!(parse_cpu_list("2-0").is_err());
    assert!(parse_cpu_list("0,x").is_err());
    assert!(parse_cpu_list("1,1").is_err());

    let config = run(&["--shards", "1", "--cpus", "0"], &[]);
    assert_eq!(config.server.cpus, [0]);

    let err = error(&["--shards", "2", "--cpus", "0"], &[]);
    assert!(
        err.starts_with("config: server.cpus: lists 1 CPUs but there are 2 shards"),
        "{err}"
    );
    assert!(err.ends_with("(from --cpus)"), "{err}");

    let Err(err) = load(&["--cpus", "0,2-"], &[]) else {
        panic!("bad CPU list must fail");
    };
    assert!(matches!(err, ConfigError::Cli(_)));
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("not a CPU id"), "{err}");
}

#[test]
fn version_is_a_clap_outcome_with_exit_zero() {
    let Err(err) = load(&["--version"], &[]) else {
        panic!("--version must stop loading");
    };
    assert!(matches!(err, ConfigError::Cli(_)));
    assert_eq!(err.exit_code(), 0);
}
