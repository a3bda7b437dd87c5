#!/usr/bin/env python3
"""A real browser against the gateway: headless Chromium (selenium, the Debian chromium and
chromium-driver packages, no driver download) opens `ws_browser.html`, which holds a WebSocket
and an EventSource on topic `browser` of another origin (the gateway). Checks:

1. events published over HTTP from here, with multi-line and non-ASCII data, reach the page's
   WebSocket (JSON envelopes) and its EventSource with identical data, ids and order;
2. the page publishes over its socket: it gets the ack, and both streams the event;
3. the page closes its socket, events are published meanwhile, and it reconnects with
   `?lastEventId=<last id it saw>`: it gets exactly the missed events, then live ones.

    ws_browser.py PAGE_URL GATEWAY_HOST:PORT

PAGE_URL is where the page is served (`tests/e2e_browser.rs` serves it and starts the gateway
with that origin in `http.cors_allow_origins`). Prints what it checked; exits 1 on failure.
"""

import http.client
import json
import os
import shutil
import sys
import tempfile
import time

os.environ["SE_OFFLINE"] = "true"  # selenium must not try to download a driver

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

TIMEOUT = 30.0
CHROMIUM = os.environ.get("SLUICEGATE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SLUICEGATE_CHROMEDRIVER", "/usr/bin/chromedriver")


class Failed(Exception):
    pass


def publish(gw, data, event=None):
    """POST one event to topic `browser`; returns its id."""
    host, port = gw.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    path = "/topics/browser/events" + (f"?event={event}" if event else "")
    conn.request("POST", path, body=data.encode())
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    if r.status != 200:
        raise Failed(f"publish {data!r}: {r.status} {body}")
    return json.loads(body)["ids"][0]


def poll(driver, script, what, timeout=TIMEOUT):
    """Evaluates `return <script>` until it is truthy; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script("return " + script)
        if value:
            return value
        if time.monotonic() > deadline:
            state = driver.execute_script(
                "return {received: window.received, sse: window.sse, closes: window.closes,"
                " errors: window.errors}"
            )
            raise Failed(f"timed out waiting for {what}; page state: {json.dumps(state)}")
        time.sleep(0.1)


def events(driver):
    return driver.execute_script("return window.received.filter(m => 'topic' in m)")


def sse(driver):
    return driver.execute_script("return window.sse")


def expect(cond, what):
    if not cond:
        raise Failed(what)
    print(f"ok: {what}")


def start_browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(arg)
    # A profile of its own: parallel runs must not share one.
    opts.add_argument("--user-data-dir=" + profile)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


def run(driver, page, gw):
    driver.set_script_timeout(TIMEOUT)
    driver.get(f"{page}?gw={gw}")
    poll(driver, "window.wsOpen && window.sseOpen", "the WebSocket and the EventSource to open")

    # 1. Published over HTTP, seen by both streams exactly.
    sent = ["héllo\nwörld ✓", "tab\there \"quoted\" \\ 𝄞 日本語", "line one\nline two\n\nafter a blank"]
    ids = [publish(gw, d) for d in sent]
    ids.append(publish(gw, "typed ✓", event="typed"))
    sent.append("typed ✓")
    poll(driver, f"window.received.filter(m => 'topic' in m).length >= {len(sent)}", "4 WebSocket events")
    poll(driver, f"window.sse.length >= {len(sent)}", "4 SSE events")
    got = events(driver)
    expect([e["data"] for e in got] == sent, "WebSocket data identical to what was published")
    expect([e["id"] for e in got] == ids, "WebSocket ids are the publish answer's ids")
    expect([e["type"] for e in got] == [None, None, None, "typed"], "WebSocket types (null when untyped)")
    got_sse = sse(driver)
    expect([e["data"] for e in got_sse] == sent, "EventSource data identical, same order")
    expect([e["id"] for e in got_sse] == ids, "EventSource ids equal the WebSocket ids")

    # 2. The page publishes over its socket.
    driver.execute_script("window.publish('req-1', 'from the page ✓\\nsecond line', null)")
    ack = poll(
        driver,
        "window.received.find(m => m.type === 'ack' && m.id === 'req-1')",
        "the ack of the page's publish",
    )
    expect(len(ack["ids"]) == 1, f"ack {ack}")
    poll(driver, f"window.received.filter(m => 'topic' in m).length >= {len(sent) + 1}", "the page's event")
    mine = events(driver)[-1]
    expect(
        mine["data"] == "from the page ✓\nsecond line" and mine["id"] == ack["ids"][0],
        "the page's event came back over its WebSocket with the acked id",
    )
    poll(driver, f"window.sse.length >= {len(sent) + 1}", "the page's event over SSE")
    expect(sse(driver)[-1]["data"] == mine["data"], "the page's event reached the EventSource too")

    # 3. Close, miss three events, resume with the last id seen.
    last_id = events(driver)[-1]["id"]
    before = len(events(driver))
    driver.execute_script("window.closeWs()")
    close = poll(driver, "!window.wsOpen && window.closes.length === 1 && window.closes[0]", "the close")
    expect(close["code"] == 1000 and close["wasClean"], f"clean close, code echoed: {close}")
    missed = ["missed 1", "missed 2 ✓", "missed\n3"]
    missed_ids = [publish(gw, d) for d in missed]
    driver.execute_script(f"window.connect('?lastEventId={last_id}')")
    poll(driver, "window.wsOpen", "the reconnect")
    poll(driver, f"window.received.filter(m => 'topic' in m).length >= {before + 3}", "the missed events")
    live_id = publish(gw, "live after resume")
    poll(driver, f"window.received.filter(m => 'topic' in m).length >= {before + 4}", "the live event")
    # One stream is ordered: a replayed duplicate would have come before the live event.
    after = events(driver)[before:]
    expect(
        [e["data"] for e in after] == missed + ["live after resume"]
        and [e["id"] for e in after] == missed_ids + [live_id],
        "after the resume exactly the missed events, then the live one",
    )
    poll(driver, f"window.sse.length >= {len(sent) + 5}", "SSE to see the missed and live events")
    all_ws = [e["data"] for e in events(driver)]
    all_sse = [e["data"] for e in sse(driver)]
    expect(all_ws == all_sse, "WebSocket and EventSource saw the same events in the same order")
    errors = driver.execute_script("return window.errors")
    expect(errors == [], f"no errors on the page: {errors}")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    page, gw = sys.argv[1], sys.argv[2]
    profile = tempfile.mkdtemp(prefix="sluicegate-chromium-")
    try:
        driver = start_browser(profile)
        try:
            run(driver, page, gw)
        except Failed as e:
            print(f"FAILED: {e}")
            return 1
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    print("browser test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
