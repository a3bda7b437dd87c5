//! Configuration: TOML file + environment + CLI flags, validated once at start.
