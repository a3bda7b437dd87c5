//! Layering: the TOML table read from the file, with environment variables and flags written
//! into it, plus a record of which source set each key (for error messages).
//!
//! Overrides go into the same `toml::Table` the file was parsed into, so one deserialization
//! (with `deny_unknown_fields`) checks every source the same way.

use super::cli::split_key;
use super::error::{ConfigError, Origin};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// Prefix of the variables that set any key: `SLUICEGATE__SSE__HEARTBEAT_MS`.
pub const ENV_PREFIX: &str = "SLUICEGATE__";

/// The merged configuration table and where each overridden key came from.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    table: Table,
    /// The file the table started from, if any; keys with no override came from it.
    file: Option<PathBuf>,
    /// Key path -> the override that last set it (a whole section counts for its keys).
    origins: BTreeMap<Vec<String>, Origin>,
}

impl Merged {
    /// Start from the TOML file at `path`.
    pub(crate) fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::ReadFile {
            path: path.to_owned(),
            err,
        })?;
        let table = text.parse::<Table>().map_err(|err| ConfigError::Parse {
            path: path.to_owned(),
            // Count lines up to the error's start; `get` keeps a bad span from panicking.
            line: err
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| before.matches('\n').count() + 1),
            message: err.message().trim().to_owned(),
        })?;
        Ok(Self {
            table,
            file: Some(path.to_owned()),
            origins: BTreeMap::new(),
        })
    }

    /// The merged table.
    pub(crate) fn table(&self) -> &Table {
        &self.table
    }

    /// Write `value` at `path`, creating tables on the way, and remember `origin` for it.
    pub(crate) fn set(
        &mut self,
        path: &[String],
        value: Value,
        origin: Origin,
    ) -> Result<(), ConfigError> {
        let Some((last, parents)) = path.split_last() else {
            return Err(ConfigError::BadOverride {
                message: "empty key".to_owned(),
                origin,
            });
        };
        let mut table = &mut self.table;
        for (depth, part) in parents.iter().enumerate() {
            let entry = table
                .entry(part.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            table = match entry {
                Value::Table(inner) => inner,
                other => {
                    return Err(ConfigError::BadOverride {
                        message: format!(
                            "cannot set `{}`: `{}` is {}, not a table",
                            path.join("."),
                            parents.get(..=depth).unwrap_or(parents).join("."),
                            describe(other)
                        ),
                        origin,
                    })
                }
            };
        }
        table.insert(last.clone(), value);
        // A later override of a whole table replaces what earlier ones set inside it.
        self.origins.retain(|key, _| !key.starts_with(path));
        self.origins.insert(path.to_vec(), origin);
        Ok(())
    }

    /// Where the value at `path` came from: the override that set it or a table around it,
    /// else an override that set a key inside it, else the file if the key is in the table,
    /// else nowhere (a built-in default).
    pub(crate) fn origin_of(&self, path: &[&str]) -> Option<Origin> {
        for len in (1..=path.len()).rev() {
            let prefix: Vec<String> = path.iter().take(len).map(|p| (*p).to_owned()).collect();
            if let Some(origin) = self.origins.get(&prefix) {
                return Some(origin.clone());
            }
        }
        // A table an override created: `--set sse2.x=1` is the source of `sse2`.
        if let Some(origin) = self
            .origins
            .iter()
            .find(|(key, _)| key.len() > path.len() && key.iter().zip(path).all(|(k, p)| k == p))
            .map(|(_, origin)| origin.clone())
        {
            return Some(origin);
        }
        let mut table = &self.table;
        for (i, part) in path.iter().enumerate() {
            match table.get(*part) {
                Some(Value::Table(inner)) if i + 1 < path.len() => table = inner,
                Some(_) if i + 1 == path.len() => return self.file.clone().map(Origin::File),
                _ => return None,
            }
        }
        None
    }

    /// Apply every `SLUICEGATE__A__B=value` variable (name case-insensitive, key lowercased).
    /// Variables are applied sorted by name so the result does not depend on their order.
    pub(crate) fn apply_env(&mut self, env: &[(String, String)]) -> Result<(), ConfigError> {
        let mut vars: Vec<&(String, String)> = env
            .iter()
            .filter(|(name, _)| {
                name.get(..ENV_PREFIX.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
            })
            .collect();
        vars.sort();
        for (name, raw) in vars {
            let origin = Origin::Env(name.clone());
            let rest = name.get(ENV_PREFIX.len()..).unwrap_or_default();
            let path = split_key(&rest.to_ascii_lowercase(), "__").map_err(|message| {
                ConfigError::BadOverride {
                    message,
                    origin: origin.clone(),
                }
            })?;
            self.set(&path, parse_value(raw), origin)?;
        }
        Ok(())
    }
}

/// Parse override text as a TOML value (`200`, `true`, `[0, 1]`, `"x"`); text that is not a
/// single TOML value (`127.0.0.1:9000`, `info`) is taken as a plain string.
pub(crate) fn parse_value(raw: &str) -> Value {
    if let Ok(mut doc) = format!("v = {raw}").parse::<Table>() {
        // More than one key means `raw` smuggled in a newline and another key: a string.
        if doc.len() == 1 {
            if let Some(value) = doc.remove("v") {
                return value;
            }
        }
    }
    Value::String(raw.to_owned())
}

/// "an integer", "a string", ... for messages.
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(key: &str) -> Vec<String> {
        key.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn values_parse_as_toml_or_fall_back_to_string() {
        assert_eq!(parse_value("200"), Value::Integer(200));
        assert_eq!(parse_value("true"), Value::Boolean(true));
        assert_eq!(parse_value("\"200\""), Value::String("200".into()));
        assert_eq!(
            parse_value("[0, 2]"),
            Value::Array(vec![Value::Integer(0), Value::Integer(2)])
        );
        assert_eq!(
            parse_value("127.0.0.1:9000"),
            Value::String("127.0.0.1:9000".into())
        );
        assert_eq!(parse_value("info"), Value::String("info".into()));
        assert_eq!(parse_value(""), Value::String(String::new()));
        assert_eq!(
            parse_value("1\nother = 2"),
            Value::String("1\nother = 2".into())
        );
    }

    #[test]
    fn env_keys_are_case_insensitive_and_double_underscore_separated() {
        let mut merged = Merged::default();
        let env = [
            (
                "sluicegate__Sse__Heartbeat_MS".to_owned(),
                "2000".to_owned(),
            ),
            ("SLUICEGATE_LISTEN".to_owned(), "ignored here".to_owned()),
            ("OTHER".to_owned(), "1".to_owned()),
        ];
        merged.apply_env(&env).expect("applies");
        let sse = merged.table().get("sse").and_then(Value::as_table);
        assert_eq!(
            sse.and_then(|t| t.get("heartbeat_ms")),
            Some(&Value::Integer(2000))
        );
        assert_eq!(merged.table().len(), 1);
        assert_eq!(
            merged.origin_of(&["sse", "heartbeat_ms"]),
            Some(Origin::Env("sluicegate__Sse__Heartbeat_MS".into()))
        );
    }

    #[test]
    fn env_key_with_empty_part_is_an_error() {
        let mut merged = Merged::default();
        let env = [("SLUICEGATE__SSE____X".to_owned(), "1".to_owned())];
        let err = merged.apply_env(&env).expect_err("empty part");
        let text = err.to_string();
        assert!(text.contains("empty part"), "{text}");
        assert!(text.contains("SLUICEGATE__SSE____X"), "{text}");
    }

    #[test]
    fn setting_inside_a_non_table_names_both_keys() {
        let mut merged = Merged::default();
        merged
            .set(&path("sse"), Value::Integer(1), Origin::Set)
            .expect("sets");
        let err = merged
            .set(&path("sse.heartbeat_ms"), Value::Integer(1), Origin::Set)
            .expect_err("sse is an integer");
        assert_eq!(
            err.to_string(),
            "config: cannot set `sse.heartbeat_ms`: `sse` is an integer, not a table (from --set)"
        );
    }

    #[test]
    fn later_whole_table_override_takes_over_origins_inside_it() {
        let mut merged = Merged::default();
        let env = Origin::Env("SLUICEGATE__SSE__RETRY_MS".into());
        merged
            .set(&path("sse.retry_ms"), Value::Integer(1), env.clone())
            .expect("sets");
        assert_eq!(merged.origin_of(&["sse", "retry_ms"]), Some(env));
        merged
            .set(&path("sse"), Value::Table(Table::new()), Origin::Set)
            .expect("sets");
        assert_eq!(merged.origin_of(&["sse", "retry_ms"]), Some(Origin::Set));
        assert_eq!(merged.origin_of(&["http", "max_headers"]), None);
    }
}
