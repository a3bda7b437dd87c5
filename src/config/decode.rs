//! Turn the merged TOML table into a [`Config`], naming the dotted key of any bad value.
//!
//! serde's messages from a `toml::Value` say what is wrong but not where ("unknown field
//! `x`", "invalid type: string, expected u64"). So each key is first deserialized on its own
//! (a table holding just that key, the rest defaulted): the one that fails is the culprit, and
//! its path and source go into the error. Unknown keys are caught by the structs'
//! `deny_unknown_fields` like everything else; the list of valid keys comes from serializing
//! the defaults, so it cannot drift from the structs.

use super::error::ConfigError;
use super::model::Config;
use super::overrides::{describe, Merged};
use toml::{Table, Value};

/// Deserialize the merged table, or say which key is wrong, how, and who set it.
pub(crate) fn decode(merged: &Merged) -> Result<Config, ConfigError> {
    let known = known_keys();
    for (section, value) in merged.table() {
        let Some(known_section) = known.get(section) else {
            return Err(unknown(merged, &[section], &known));
        };
        match value {
            Value::Table(keys) => {
                for (key, inner) in keys {
                    let single = Table::from_iter([(key.clone(), inner.clone())]);
                    let probe = Table::from_iter([(section.clone(), Value::Table(single))]);
                    if let Err(err) = Value::Table(probe).try_into::<Config>() {
                        let known_keys = known_section.as_table().cloned().unwrap_or_default();
                        if !known_keys.contains_key(key) {
                            return Err(unknown(merged, &[section, key], &known_keys));
                        }
                        return Err(invalid(merged, &[section, key], &err));
                    }
                }
            }
            other => {
                return Err(ConfigError::Invalid {
                    key: section.clone(),
                    message: format!("expected a table, found {}", describe(other)),
                    origin: merged.origin_of(&[section]),
                })
            }
        }
    }
    // Every key passed on its own; the whole can only fail if a check above has a gap.
    Value::Table(merged.table().clone())
        .try_into::<Config>()
        .map_err(|err| ConfigError::Invalid {
            key: "(config)".to_owned(),
            message: err.message().trim().to_owned(),
            origin: None,
        })
}

/// The defaults as a TOML table: every valid section and key.
fn known_keys() -> Table {
    match Value::try_from(Config::default()) {
        Ok(Value::Table(table)) => table,
        _ => Table::new(),
    }
}

fn unknown(merged: &Merged, path: &[&String], level: &Table) -> ConfigError {
    let path: Vec<&str> = path.iter().map(|p| p.as_str()).collect();
    ConfigError::UnknownKey {
        key: path.join("."),
        origin: merged.origin_of(&path),
        expected: level
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn invalid(merged: &Merged, path: &[&String], err: &toml::de::Error) -> ConfigError {
    let path: Vec<&str> = path.iter().map(|p| p.as_str()).collect();
    ConfigError::Invalid {
        key: path.join("."),
        message: err.message().trim().to_owned(),
        origin: merged.origin_of(&path),
    }
}
