"""Shared pieces of the WebSocket conformance cases: the case registry and its result record,
HTTP publishing (stdlib `http.client`), a `websockets` sync client with the gateway's
defaults, and helpers that read a close frame or an answer and describe what they saw.
"""

import http.client
import json
import time

from websockets.sync.client import connect as ws_connect

from rawws import CLOSE, RawWs

TIMEOUT = 10.0

CASES = []


class Case:
    """One conformance case: its function runs against a context and returns (observed, ok)."""

    def __init__(self, cid, category, group, description, expected, fn, known):
        self.cid, self.category, self.group = cid, category, group
        self.description, self.expected, self.fn = description, expected, fn
        self.known = known
        self.observed, self.ok = "not run", False

    def result(self):
        """pass, FAIL, or `known issue` for a failing case marked with a known gateway issue
        (which does not fail the run; it passes again once the gateway is fixed)."""
        if self.ok:
            return "pass"
        return "known issue" if self.known else "FAIL"


def case(cid, category, description, expected, group="default", known=None):
    """Registers a case; the decorated function takes the group's context. `known` names a
    gateway issue that makes the case fail today (reported, not counted as a failure)."""

    def register(fn):
        CASES.append(Case(cid, category, group, description, expected, fn, known))
        return fn

    return register


def topic_of(cid):
    """A topic name of this case's own (so cases never see each other's events)."""
    return "conf." + cid.replace(" ", "")


class Ctx:
    """What the cases of one group talk to: the gateway's address (and pid for drain)."""

    def __init__(self, addr, pid=None):
        self.addr, self.pid = addr, pid

    @property
    def base(self):
        return f"ws://{self.addr[0]}:{self.addr[1]}"

    def publish(self, topic, data, query=""):
        """POST one event; returns its id (asserts 200)."""
        status, body = self.http("POST", f"/topics/{topic}/events{query}", data.encode())
        if status != 200:
            raise AssertionError(f"publish to {topic}: {status} {body!r}")
        return json.loads(body)["ids"][0]

    def http(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.addr[0], self.addr[1], timeout=TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def ws(self, path, **kw):
        """A `websockets` sync client (no compression offered, no proxy, generous timeouts)."""
        kw.setdefault("compression", None)
        kw.setdefault("max_size", 4 * 1024 * 1024)
        kw.setdefault("open_timeout", TIMEOUT)
        return ws_connect(self.base + path, proxy=None, **kw)

    def raw(self, path="/topics/conf/ws", headers=None):
        return RawWs(self.addr, path, headers, timeout=TIMEOUT)


def publish_request(topic, size, rid=1):
    """A publish request of exactly `size` bytes (its data padded with `x`)."""
    head = f'{{"op":"publish","id":{rid},"topic":"{topic}","data":"'
    tail = '"}'
    pad = size - len(head) - len(tail)
    if pad < 0:
        raise ValueError(f"a publish request needs at least {len(head) + len(tail)} bytes")
    return head + "x" * pad + tail


def recv_json(ws, timeout=TIMEOUT):
    return json.loads(ws.recv(timeout=timeout))


def answer_to(ws, rid, timeout=TIMEOUT):
    """The ack or error answering request `rid`, skipping events; (answer, events seen)."""
    deadline = time.monotonic() + timeout
    events = []
    while True:
        msg = recv_json(ws, max(0.01, deadline - time.monotonic()))
        if "topic" in msg:
            events.append(msg)
            continue
        if msg.get("id") == rid and msg.get("type") in ("ack", "error"):
            return msg, events


def raw_answer(raw, timeout=TIMEOUT):
    """The next JSON text message on a raw socket (None on close/EOF/timeout)."""
    f = raw.next_data(timeout)
    return None if f is None else json.loads(f.payload)


def describe_close(raw, timeout=TIMEOUT, reply=False):
    """Reads to the close frame and then the TCP end: returns (code or None, text)."""
    f, before = raw.until_close(timeout)
    if f is None:
        what = "end of stream" if raw.eof else "timeout"
        return None, f"no close frame ({what}; {len(before)} frames before)"
    code = f.close_code()
    if reply:
        try:
            raw.send_frame(CLOSE, f.payload[:2])
        except OSError:
            pass
    closed = raw.wait_eof(timeout)
    text = f"close {code}" if code is not None else "close (no code)"
    text += ", TCP closed" if closed else ", TCP left open"
    if before:
        text += f" ({len(before)} frames before)"
    return (code if closed else None), text


def expect_close(raw, code, timeout=TIMEOUT):
    """(observed, ok): the server sent close `code` and then closed the connection."""
    got, text = describe_close(raw, timeout)
    return text, got == code
