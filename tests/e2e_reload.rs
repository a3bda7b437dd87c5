//! End to end: SIGHUP reloads what can change without a restart from the config file: API keys
//! (added, removed, their ACLs), rate limits and sync hooks, with a log line saying what
//! changed; a config that no longer loads changes nothing and says why.
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::{http_request, sha256_hex, Gateway};

fn key(name: &str, secret: &str, publish: &str) -> String {
    format!(
        "[[auth.api_keys]]\nname = \"{name}\"\nsha256 = \"{}\"\npublish = [{publish}]\nsubscribe = [\"**\"]\n",
        sha256_hex(secret)
    )
}

fn sighup(gw: &Gateway) {
    let status = Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
}

fn publish(gw: &Gateway, topic: &str, secret: &str) -> u16 {
    let auth = format!("Bearer {secret}");
    http_request(
        gw.addr(),
        "POST",
        &format!("/topics/{topic}/events"),
        &[("authorization", &auth)],
        b"x",
    )
    .expect("publish")
    .status
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "{what} within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_keys_acls_limits_and_hooks() {
    let hook = Receiver::start(None, None);
    hook.plan(r#"{"default": {"body": {"action": "reject", "status": 451, "reason": "frozen"}}}"#);
    let dir = std::env::temp_dir().join(format!("sluicegate-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("sluicegate.toml");
    std::fs::write(&path, key("old", "old-secret", "\"**\"")).expect("write");
    let path_text = path.to_string_lossy().into_owned();
    let gw = Gateway::start(&["--config", &path_text, "--shards", "2"]);
    assert_eq!(publish(&gw, "a.x", "old-secret"), 200);
    assert_eq!(publish(&gw, "a.x", "new-secret"), 401);

    let fresh = format!(
        "{}[limits]\npublish_events = {{ per_s = 0.001, burst = 20.0 }}\n\
         [[hooks.publish]]\nname = \"freeze\"\nurl = \"{}\"\ntopics = [\"frozen.*\"]\n",
        key("new", "new-secret", "\"a.*\", \"frozen.*\""),
        hook.url("/hook")
    );
    std::fs::write(&path, fresh).expect("rewrite");
    sighup(&gw);
    wait_for("the old key refused", || {
        publish(&gw, "a.x", "old-secret") == 401
    });
    // Both shards took the new keys (new connections land on either).
    for _ in 0..6 {
        assert_eq!(
            publish(&gw, "b.x", "new-secret"),
            403,
            "outside the new key's ACL"
        );
    }
    assert_eq!(publish(&gw, "frozen.x", "new-secret"), 451, "the new hook");
    // A burst of 20 split over the shards: 30 publishes see both answers, wherever they land.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(publish(&gw, "a.x", "new-secret"));
    }
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(statuses.contains(&429), "the new rate limit: {statuses:?}");
    let log = gw.log();
    assert!(log.contains("SIGHUP: reloaded"), "{log}");
    assert!(
        log.contains("API keys added: new") && log.contains("API keys removed: old"),
        "{log}"
    );
    assert!(
        log.contains("rate limits changed") && log.contains("hooks: 1 publish"),
        "{log}"
    );

    // A config that does not load: nothing changes, and the log says why.
    std::fs::write(&path, "[limits\nbroken").expect("break");
    sighup(&gw);
    wait_for("the refusal logged", || gw.log().contains("not reloaded"));
    assert_eq!(
        publish(&gw, "a.x", "old-secret"),
        401,
        "what was in use stays"
    );
    assert_eq!(publish(&gw, "b.x", "new-secret"), 403);
    let _ = std::fs::remove_dir_all(&dir);
}
