//! Command-line flags (clap derive) and the parsers for their values (`--cpus`, `--set`).
//!
//! The flags that also have an environment variable do not use clap's `env` attribute: clap
//! would read the process environment, while [`crate::config::Config::load`] takes the
//! environment as an argument so tests can pass their own. `load` applies those variables.

use clap::Parser;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Highest CPU id `--cpus` accepts; bounds the list a range like `0-99999999` would build.
pub const MAX_CPU_ID: usize = 8191;

/// Sluicegate command line. Precedence, lowest first: built-in defaults, the TOML file,
/// `SLUICEGATE__SECTION__KEY` variables, the flag variables (`SLUICEGATE_LISTEN`, ...),
/// `--set`, the named flags.
#[derive(Debug, Clone, Parser)]
#[command(name = "sluicegate", version, about = "Thread-per-core event gateway")]
pub struct Cli {
    /// TOML config file [env: SLUICEGATE_CONFIG]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Listen address, sets server.listen [env: SLUICEGATE_LISTEN]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Number of shards, 0 = one per CPU; sets server.shards [env: SLUICEGATE_SHARDS]
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// CPUs to pin shards to, e.g. "0,2-3"; sets server.cpus
    #[arg(long, value_name = "LIST", value_parser = parse_cpu_list)]
    pub cpus: Option<CpuList>,
    /// Log filter (tracing EnvFilter syntax), sets log.level [env: SLUICEGATE_LOG]
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// Set any key, e.g. sse.heartbeat_ms=200; VALUE is TOML, else taken as a string
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<SetArg>,
    /// Validate the configuration, print it as TOML and exit
    #[arg(long)]
    pub check_config: bool,
    /// Print a systemd unit for this binary (and --config file) and exit
    #[arg(long)]
    pub print_systemd_unit: bool,
}

/// A parsed `--cpus` list: CPU ids in the order given, no duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// A parsed `--set KEY=VALUE`: the key split at dots, the value still raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetArg {
    /// Key path, e.g. `["sse", "heartbeat_ms"]`.
    pub path: Vec<String>,
    /// The text after `=`, trimmed; parsed as a TOML value when applied.
    pub value: String,
}

/// Parse a CPU list such as `0,2-3` (ids and inclusive ranges, comma separated). An empty
/// string is an empty list (no pinning). Errors on empty items, non-numbers, backwards
/// ranges, ids above [`MAX_CPU_ID`] and ids listed twice (two shards on one core defeat
/// thread-per-core).
pub fn parse_cpu_list(text: &str) -> Result<CpuList, String> {
    let text = text.trim();
    let mut cpus = Vec::new();
    if text.is_empty() {
        return Ok(CpuList(cpus));
    }
    let mut seen = BTreeSet::new();
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("empty item in CPU list `{text}`"));
        }
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (cpu_id(a)?, cpu_id(b)?),
            None => {
                let id = cpu_id(item)?;
                (id, id)
            }
        };
        if first > last {
            return Err(format!("CPU range `{item}` runs backwards"));
        }
        for cpu in first..=last {
            if !seen.insert(cpu) {
                return Err(format!("CPU {cpu} is listed twice"));
            }
            cpus.push(cpu);
        }
    }
    Ok(CpuList(cpus))
}

fn cpu_id(text: &str) -> Result<usize, String> {
    let text = text.trim();
    // `usize::from_str` accepts a leading '+'; a CPU id is plain digits.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` is not a CPU id"));
    }
    match text.parse::<usize>() {
        Ok(id) if id <= MAX_CPU_ID => Ok(id),
        _ => Err(format!("CPU id `{text}` is above {MAX_CPU_ID}")),
    }
}

/// Parse `KEY=VALUE` for `--set`: the key is dot separated with no empty parts.
pub fn parse_set(text: &str) -> Result<SetArg, String> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(format!("expected KEY=VALUE, got `{text}`"));
    };
    let path = split_key(key.trim(), ".")?;
    Ok(SetArg {
        path,
        value: value.trim().to_owned(),
    })
}

/// Split a key at `sep`, refusing empty parts (`a..b`, a leading or trailing separator).
pub(crate) fn split_key(key: &str, sep: &str) -> Result<Vec<String>, String> {
    let parts: Vec<String> = key.split(sep).map(str::to_owned).collect();
    if key.is_empty() || parts.iter().any(String::is_empty) {
        return Err(format!("key `{key}` has an empty part"));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_list_ids_and_ranges() {
        assert_eq!(parse_cpu_list("0,2-3"), Ok(CpuList(vec![0, 2, 3])));
        assert_eq!(parse_cpu_list(" 5 , 1 - 2 "), Ok(CpuList(vec![5, 1, 2])));
        assert_eq!(parse_cpu_list("7"), Ok(CpuList(vec![7])));
        assert_eq!(parse_cpu_list("4-4"), Ok(CpuList(vec![4])));
        assert_eq!(parse_cpu_list(""), Ok(CpuList(vec![])));
    }

    #[test]
    fn cpu_list_errors_say_what_is_wrong() {
        let cases = [
            ("0,,1", "empty item"),
            ("0,", "empty item"),
            ("a", "not a CPU id"),
            ("+1", "not a CPU id"),
            ("-1", "not a CPU id"),
            ("1-", "not a CPU id"),
            ("3-1", "runs backwards"),
            ("0-2,1", "CPU 1 is listed twice"),
            ("99999999999999999999999", "above 8191"),
            ("0-8192", "above 8191"),
        ];
        for (input, want) in cases {
            let err = parse_cpu_list(input).expect_err(input);
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn set_splits_key_and_keeps_value_raw() {
        let set = parse_set("sse.heartbeat_ms = 200").expect("valid");
        assert_eq!(set.path, ["sse", "heartbeat_ms"]);
        assert_eq!(set.value, "200");
        let set = parse_set("server.listen=127.0.0.1:9000").expect("valid");
        assert_eq!(set.value, "127.0.0.1:9000");
        // Only the first '=' splits: filters may contain '='.
        let set = parse_set("log.level=sluicegate=debug").expect("valid");
        assert_eq!(set.value, "sluicegate=debug");
    }

    #[test]
    fn set_rejects_malformed_keys() {
        assert!(parse_set("sse.heartbeat_ms").is_err());
        assert!(parse_set("=1").is_err());
        assert!(parse_set("sse..heartbeat_ms=1").is_err());
        assert!(parse_set(".sse=1").is_err());
    }

    #[test]
    fn cli_reports_bad_cpus_through_clap() {
        let err = Cli::try_parse_from(["sluicegate", "--cpus", "3-1"]).expect_err("bad list");
        assert!(err.to_string().contains("runs backwards"), "{err}");
        let cli = Cli::try_parse_from(["sluicegate", "--cpus", "0,2-3"]).expect("good list");
        assert_eq!(cli.cpus, Some(CpuList(vec![0, 2, 3])));
    }
}
