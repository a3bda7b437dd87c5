//! JWTs for the policy tests, minted by PyJWT (`tests/common/mint_jwt.py`) so the gateway is
//! checked against tokens from an independent implementation, not from the crate it uses.
use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// A committed test key file (tests/keys/NAME), as an absolute path.
pub fn key_file(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Mint a token from a JSON spec (see mint_jwt.py); panics with Python's error output.
pub fn mint(spec: &str) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/common/mint_jwt.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(spec)
        .output()
        .unwrap_or_else(|e| panic!("run python3 {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "mint_jwt.py {spec}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
