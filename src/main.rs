//! The `sluicegate` binary: load config, start the shards, drain on SIGTERM/SIGINT.
use std::process::ExitCode;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGXFSZ};
use signal_hook::iterator::Signals;
use sluicegate::config::{Config, LoadOutcome, LogFormat};
use sluicegate::service::notify::notify;
use sluicegate::service::unit::systemd_unit;
use sluicegate::Gateway;

fn main() -> ExitCode {
    let config = match Config::load(std::env::args_os(), sluicegate::config::process_env()) {
        Ok(LoadOutcome::Run(c)) => c,
        Ok(LoadOutcome::CheckOnly(c)) => {
            print!("{}", c.to_toml());
            return ExitCode::SUCCESS;
        }
        Ok(LoadOutcome::PrintSystemdUnit { config_file }) => {
            let binary = std::env::current_exe()
                .and_then(|p| p.canonicalize())
                .unwrap_or_else(|_| "/usr/local/bin/sluicegate".into());
            let config_file = config_file.map(|c| c.canonicalize().unwrap_or(c));
            print!("{}", systemd_unit(&binary, config_file.as_deref()));
            return ExitCode::SUCCESS;
        }
        Err(e) => e.exit(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match config.log.format {
        LogFormat::Text => logs.init(),
        // One object per line, for log shippers: timestamp, level, fields (message included).
        LogFormat::Json => logs.json().with_target(true).init(),
    }

    let mut signals = match Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sluicegate: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A write past the file-size limit (RLIMIT_FSIZE) must fail with EFBIG, answered 503 by
    // the durable log, not kill the process: a handler replaces SIGXFSZ's default action.
    if let Err(e) = signal_hook::flag::register(
        SIGXFSZ,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    ) {
        eprintln!("sluicegate: cannot install the SIGXFSZ handler: {e}");
        return ExitCode::FAILURE;
    }
    let listen = config.server.listen;
    let shards = config.effective_shards();
    let broker = if config.kafka.enabled() {
        format!("kafka {}", config.kafka.bootstrap.join(","))
    } else if config.redis.is_broker() {
        format!("redis streams {}", config.redis.display_url())
    } else if config.storage.durable() {
        format!(
            "embedded, durable in {} (fsync {:?})",
            config.storage.data_dir.display(),
            config.storage.fsync
        )
    } else {
        "embedded in-memory".to_owned()
    };
    let gateway = match Gateway::start(config) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("sluicegate: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%listen, shards, broker, "sluicegate listening");
    // systemd (Type=notify): ready once /readyz would answer 200.
    let readiness = gateway.readiness();
    std::thread::spawn(move || {
        while !readiness.is_ready() {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        notify("READY=1");
    });
    let shutdown = gateway.shutdown_handle();
    let reload = gateway.reload_handle();
    std::thread::spawn(move || {
        let mut seen = 0;
        for signal in signals.forever() {
            if signal == SIGHUP {
                // The config is read again from the same file, environment and flags.
                let outcome =
                    match Config::load(std::env::args_os(), sluicegate::config::process_env()) {
                        Ok(LoadOutcome::Run(fresh)) => reload.reload_config(&fresh),
                        Ok(_) => Err("the command line no longer runs the gateway".to_owned()),
                        Err(e) => Err(e.to_string()),
                    };
                match outcome {
                    Ok(what) if what.is_empty() => {
                        tracing::info!(
                            "SIGHUP: nothing changed (no key or secret files to re-read)"
                        )
                    }
                    Ok(what) => tracing::info!("SIGHUP: reloaded: {}", what.join("; ")),
                    Err(e) => {
                        tracing::warn!("SIGHUP: not reloaded, what is in use stays: {e}")
                    }
                }
                continue;
            }
            seen += 1;
            if seen > 1 {
                eprintln!("sluicegate: second signal {signal}; exiting now");
                std::process::exit(130);
            }
            tracing::info!(
                signal,
                "draining: no new connections; SSE clients told to reconnect"
            );
            notify("STOPPING=1");
            shutdown.request();
        }
    });
    match gateway.join() {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sluicegate: {e}");
            ExitCode::FAILURE
        }
    }
}
