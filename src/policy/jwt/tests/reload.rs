//! `JwtKeys`: reload on demand and from the file watcher, and that a failed reload keeps the
//! keys in force.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::*;
use crate::policy::jwt::{JwtError, JwtKeys};

/// A temp dir with a JWKS file holding the committed keys under kids `es-1` and `ed-1`.
fn jwks_dir(name: &str) -> (TempDir, String) {
    let dir = TempDir::new(name);
    let path = dir.file("jwks.json");
    std::fs::write(&path, key_text("jwks.json")).unwrap();
    (dir, path)
}

/// The committed JWKS with its keys' kids renamed (`-1` becomes `-2`): a rotation.
fn rotated_jwks() -> String {
    key_text("jwks.json").replace("-1\"", "-2\"")
}

fn verify_es(keys: &JwtKeys, kid: &str) -> Result<(), JwtError> {
    let token = mint(Algorithm::ES256, Some(kid), &claims(), &es_key());
    keys.current()
        .1
        .verify(&token, &settings(), NOW)
        .map(|_| ())
}

#[test]
fn jwt_keys_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<JwtKeys>();
    shared::<KeySet>();
}

#[test]
fn reload_picks_up_a_changed_jwks_file() {
    let (_dir, path) = jwks_dir("reload");
    let keys = JwtKeys::new(vec![jwks_cfg(&path, &["ES256", "EdDSA"])]).unwrap();
    assert_eq!(keys.generation(), 0);
    assert_eq!(verify_es(&keys, "es-1"), Ok(()));

    std::fs::write(&path, rotated_jwks()).unwrap();
    // Nothing changes until a reload.
    assert_eq!(verify_es(&keys, "es-2"), Err(JwtError::UnknownKid));
    keys.reload().unwrap();
    assert_eq!(keys.generation(), 1);
    let (generation, set) = keys.current();
    assert_eq!(generation, 1);
    assert_eq!(set.kids(), ["ed-2", "es-2"]);
    assert_eq!(verify_es(&keys, "es-2"), Ok(()));
    assert_eq!(verify_es(&keys, "es-1"), Err(JwtError::UnknownKid));
}

#[test]
fn a_broken_reload_keeps_the_old_keys() {
    let (_dir, path) = jwks_dir("broken");
    let keys = JwtKeys::new(vec![jwks_cfg(&path, &["ES256", "EdDSA"])]).unwrap();
    let (_, before) = keys.current();

    std::fs::write(&path, "{\"keys\": [").unwrap();
    let err = keys.reload().unwrap_err();
    assert!(err.contains("not a JWKS"), "{err}");
    std::fs::remove_file(&path).unwrap();
    let err = keys.reload().unwrap_err();
    assert!(err.contains("cannot read"), "{err}");

    assert_eq!(keys.generation(), 0);
    assert!(Arc::ptr_eq(&before, &keys.current().1));
    assert_eq!(verify_es(&keys, "es-1"), Ok(()));
}

#[test]
fn inline_only_keys_reload_to_the_same_keys() {
    let keys = JwtKeys::new(vec![secret_cfg("a", SECRET, &["HS256"])]).unwrap();
    keys.reload().unwrap();
    assert_eq!(keys.generation(), 1);
    assert_eq!(keys.current().1.kids(), ["a"]);
    assert!(keys.fingerprint().is_empty());
}

#[test]
fn poll_reloads_only_when_a_file_changed() {
    let (_dir, path) = jwks_dir("poll");
    let keys = JwtKeys::new(vec![
        secret_cfg("hs", SECRET, &["HS256"]),
        jwks_cfg(&path, &["ES256", "EdDSA"]),
    ])
    .unwrap();
    let mut seen = keys.fingerprint();
    assert!(!keys.poll_files(&mut seen));
    assert_eq!(keys.generation(), 0);

    // A different size is a change whatever the mtime granularity.
    std::fs::write(&path, rotated_jwks().replace("  ", " ")).unwrap();
    assert!(keys.poll_files(&mut seen));
    assert_eq!(keys.generation(), 1);
    assert_eq!(verify_es(&keys, "es-2"), Ok(()));
    assert!(!keys.poll_files(&mut seen));

    // A broken file is tried once, and again only after it changes.
    std::fs::write(&path, "garbage").unwrap();
    assert!(keys.poll_files(&mut seen));
    assert!(!keys.poll_files(&mut seen));
    assert_eq!(keys.generation(), 1);
    std::fs::write(&path, key_text("jwks.json")).unwrap();
    assert!(keys.poll_files(&mut seen));
    assert_eq!(keys.generation(), 2);
    assert_eq!(verify_es(&keys, "es-1"), Ok(()));
}

#[test]
fn the_watcher_thread_reloads_and_stops_with_its_keys() {
    let (_dir, path) = jwks_dir("watch");
    let keys = Arc::new(JwtKeys::new(vec![jwks_cfg(&path, &["ES256", "EdDSA"])]).unwrap());
    let watcher = keys.spawn_file_watcher(Duration::from_millis(5)).unwrap();
    std::fs::write(&path, rotated_jwks()).unwrap();
    // Waits for the outcome, not for a time: the deadline only bounds a hang on a busy box.
    let deadline = Instant::now() + Duration::from_secs(60);
    while keys.generation() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(keys.generation(), 1);
    assert_eq!(verify_es(&keys, "es-2"), Ok(()));
    drop(keys);
    watcher.join().unwrap();
}

#[test]
fn the_secret_file_is_reread_on_reload() {
    let dir = TempDir::new("secret-reload");
    let path = dir.file("secret");
    std::fs::write(&path, SECRET).unwrap();
    let cfg = JwtKeyConfig {
        kid: "s".into(),
        algorithms: algs(&["HS256"]),
        secret_file: path.clone(),
        ..Default::default()
    };
    let keys = JwtKeys::new(vec![cfg]).unwrap();
    let token = mint(Algorithm::HS256, Some("s"), &json!({}), &hs_key());
    assert!(keys.current().1.verify(&token, &settings(), NOW).is_ok());
    std::fs::write(&path, "a-rotated-secret-of-32-bytes-too").unwrap();
    keys.reload().unwrap();
    assert_eq!(
        keys.current().1.verify(&token, &settings(), NOW),
        Err(JwtError::BadSignature)
    );
}
