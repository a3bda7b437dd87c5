//! End to end in a real browser: headless Chromium, driven by `tests/browser/ws_browser.py`
//! (selenium), loads `tests/browser/ws_browser.html` from a small page server on one loopback
//! port and opens a WebSocket and an EventSource to the gateway on another (cross-origin; the
//! page's origin is in `http.cors_allow_origins`). The script publishes over HTTP, the page
//! publishes over its socket, closes it and resumes with `?lastEventId=`; see the script for
//! what is checked. Nothing is skipped: without Chromium the test fails and says how to get it.
mod common;

use common::{config_file, Gateway};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;

const PAGE: &str = include_str!("browser/ws_browser.html");
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Serves the page at `/ws_browser.html` (404 for anything else) on a loopback port, from a
/// thread that lives as long as the test process.
fn serve_page() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the page server");
    let addr = listener.local_addr().expect("page server address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // One request per connection; a broken one only loses that connection.
            let _ = answer(stream);
        }
    });
    addr
}

fn answer(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let path = request_line.split(' ').nth(1).unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    let (status, ctype, body) = if path == "/ws_browser.html" {
        ("200 OK", "text/html; charset=utf-8", PAGE)
    } else {
        ("404 Not Found", "text/plain", "not found\n")
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

/// Panics with how to get it unless `program --version` runs.
fn require(program: &str, what: &str) {
    let ok = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{what} ({program}) is missing or does not run: tests/run-all.sh installs it \
         (Debian packages chromium and chromium-driver, Python package selenium)"
    );
}

#[test]
fn a_browser_page_gets_the_same_events_over_websocket_and_eventsource_and_resumes() {
    require(CHROMIUM, "Chromium");
    require(CHROMEDRIVER, "chromedriver");
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        selenium,
        "the Python package selenium is missing: tests/run-all.sh installs it"
    );
    let page = serve_page();
    let origin = format!("http://{page}");
    let toml = format!("[http]\ncors_allow_origins = [\"{origin}\"]\n");
    let gw = Gateway::start(&["--shards", "2", "--config", &config_file(&toml)]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/ws_browser.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(format!("{origin}/ws_browser.html"))
        .arg(gw.addr().to_string())
        .env("SLUICEGATE_CHROMIUM", CHROMIUM)
        .env("SLUICEGATE_CHROMEDRIVER", CHROMEDRIVER)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ws_browser.py failed ({}):\n{stdout}\nstderr:\n{}\ngateway log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    println!("{stdout}");
}
