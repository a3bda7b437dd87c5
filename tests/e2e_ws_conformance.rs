//! End to end over loopback: the WebSocket conformance suite (`tests/ws_conformance.py`, cases
//! after the Autobahn|Testsuite categories plus the gateway's own) against three real gateways:
//! default settings (two shards), small frame/message limits with 500 ms pings, and one the
//! script drains with SIGTERM. The script's well-formed traffic comes from the Python
//! `websockets` client, an implementation independent of the gateway's. Set
//! `SLUICEGATE_CONFORMANCE_MD=PATH` to have it also write its table there (how
//! `tests/ws_conformance.md` is made).
mod common;

use common::{config_file, Gateway};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The limits the script's group 9 expects (see `MAX_FRAME` / `MAX_MESSAGE` in
/// `tests/wsconf/cases_close.py`).
const LIMITS: &str =
    "[ws]\nmax_frame_bytes = 512\nmax_message_bytes = 2048\nping_interval_ms = 500\n";

#[test]
fn the_websocket_conformance_suite_passes() {
    let python = Command::new("python3")
        .args(["-c", "import websockets"])
        .output()
        .unwrap_or_else(|e| panic!("run python3: {e}; tests/run-all.sh installs Python 3"));
    assert!(
        python.status.success(),
        "the Python package `websockets` is missing (tests/run-all.sh installs it): {}",
        String::from_utf8_lossy(&python.stderr)
    );
    let default = Gateway::start(&["--shards", "2"]);
    let limits = Gateway::start(&["--config", &config_file(LIMITS)]);
    let mut drain = Gateway::start(&[]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ws_conformance.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .args(["--default", &default.addr().to_string()])
        .args(["--limits", &limits.addr().to_string()])
        .args(["--drain", &drain.addr().to_string()])
        .args(["--drain-pid", &drain.pid().to_string()]);
    if let Some(md) = std::env::var_os("SLUICEGATE_CONFORMANCE_MD") {
        cmd.arg("--markdown").arg(md);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ws_conformance.py failed ({}):\n{stdout}\nstderr:\n{stderr}\n\
         default gateway log:\n{}\nlimits gateway log:\n{}\ndrain gateway log:\n{}",
        out.status,
        default.log(),
        limits.log(),
        drain.log()
    );
    println!("{stdout}");
    // The drain group sent SIGTERM: that gateway finished its drain and exited cleanly.
    let exit = drain.wait_exit(Duration::from_secs(30));
    assert!(
        exit.is_some_and(|s| s.success()),
        "drained gateway: {exit:?}; log:\n{}",
        drain.log()
    );
}
