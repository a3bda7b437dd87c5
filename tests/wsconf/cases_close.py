"""Conformance cases after Autobahn|Testsuite categories 7 (close handling) and 9 (limits, run
against a gateway started with small `ws.max_frame_bytes` / `ws.max_message_bytes`), and the
server's keepalive (pings every `ws.ping_interval_ms`, 1008 for a client that never answers),
run against that same gateway, which pings every 500 ms.
"""

import time

from websockets.exceptions import ConnectionClosed

from rawws import CLOSE, CONT, PING, PONG, TEXT, close_payload, frame
from support import (
    case,
    describe_close,
    expect_close,
    publish_request,
    raw_answer,
    recv_json,
    topic_of,
)

# The limits group's gateway config (the Rust test starts it with these).
MAX_FRAME = 512
MAX_MESSAGE = 2048


def _echo_case(cid, what, payload, want_code):
    @case(cid, "7 close", what, f"close {want_code} echoed, TCP closed")
    def run(ctx):
        raw = ctx.raw()
        raw.send_frame(CLOSE, payload)
        return expect_close(raw, want_code)


_echo_case("7.1.1", "close 1000, no reason", close_payload(1000), 1000)
_echo_case("7.1.2", "close 1000 with reason 'bye ✓'", close_payload(1000, "bye ✓"), 1000)
_echo_case("7.1.3", "close with a 123-byte reason (the most that fits)", close_payload(1000, "r" * 123), 1000)


@case("7.1.4", "7 close", "close with no payload", "close echoed (no code, or 1000), TCP closed")
def _(ctx):
    raw = ctx.raw()
    raw.send_frame(CLOSE, b"")
    f, _ = raw.until_close()
    closed = raw.wait_eof()
    code = None if f is None else f.close_code()
    ok = f is not None and code in (None, 1000) and closed
    return f"close {code}, TCP closed: {closed}" if f else "no close frame", ok


for i, code in enumerate([1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999], 1):
    _echo_case(f"7.2.{i}", f"close with valid code {code}", close_payload(code), code)


def _refused_close(cid, what, payload, want):
    @case(cid, "7 close", what, f"close {want}, TCP closed")
    def run(ctx):
        raw = ctx.raw()
        raw.send_frame(CLOSE, payload)
        return expect_close(raw, want)


for i, code in enumerate([0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535], 1):
    _refused_close(f"7.3.{i}", f"close with invalid code {code}", close_payload(code), 1002)
_refused_close("7.4.1", "close with a 1-byte payload", b"\x03", 1002)
_refused_close("7.4.2", "close with 126-byte payload (control frame too big)", close_payload(1000, "r" * 124), 1002)
_refused_close("7.5.1", "close with a reason that is not UTF-8", close_payload(1000, b"\xff\xfe"), 1007)
_refused_close("7.5.2", "close with a surrogate in its reason", close_payload(1000, b"\xed\xa0\x80"), 1007)


@case(
    "7.6.1",
    "7 close",
    "close, then in the same write a publish request and a ping",
    "close 1000 echoed; nothing answered or published after it; TCP closed",
)
def _(ctx):
    topic = topic_of("7.6.1")
    with ctx.ws(f"/topics/{topic}/ws") as watcher:
        raw = ctx.raw()
        after = frame(TEXT, publish_request(topic, 100)) + frame(PING, b"late")
        raw.send(frame(CLOSE, close_payload(1000)) + after)
        code, obs = describe_close(raw)
        ctx.publish(topic, "marker")
        first = recv_json(watcher)["data"]
    ok = code == 1000 and "frames before" not in obs and first == "marker"
    return f"{obs}; first event seen afterwards: {first!r}", ok


@case("7.6.2", "7 close", "websockets client close()", "closing handshake completes with 1000")
def _(ctx):
    ws = ctx.ws("/topics/conf/ws")
    ws.close()
    rcvd = ws.close_code
    return f"server's close code {rcvd}", rcvd == 1000


def _limit_case(cid, what, data, expected, want_close):
    @case(cid, "9 limits", what, expected, group="limits")
    def run(ctx):
        topic = topic_of(cid)
        raw = ctx.raw(f"/topics/{topic}/ws")
        raw.send(data(topic))
        if want_close:
            return expect_close(raw, 1009)
        v = raw_answer(raw)
        raw.close()
        kind = "nothing" if v is None else "event" if "topic" in v else v["type"]
        return kind, kind in ("ack", "event")


def _frames(req, size):
    req = req.encode()
    chunks = [req[i : i + size] for i in range(0, len(req), size)]
    return b"".join(
        frame(TEXT if i == 0 else CONT, c, fin=i == len(chunks) - 1) for i, c in enumerate(chunks)
    )


_limit_case(
    "9.1",
    f"one frame of exactly ws.max_frame_bytes ({MAX_FRAME})",
    lambda t: frame(TEXT, publish_request(t, MAX_FRAME)),
    "accepted (answered)",
    False,
)
_limit_case(
    "9.2",
    f"one frame of ws.max_frame_bytes + 1 ({MAX_FRAME + 1})",
    lambda t: frame(TEXT, publish_request(t, MAX_FRAME + 1)),
    "close 1009, TCP closed",
    True,
)
_limit_case(
    "9.3",
    f"message of exactly ws.max_message_bytes ({MAX_MESSAGE}) in {MAX_FRAME}-byte fragments",
    lambda t: _frames(publish_request(t, MAX_MESSAGE), MAX_FRAME),
    "accepted (answered)",
    False,
)
_limit_case(
    "9.4",
    f"message of ws.max_message_bytes + 1 in fragments within the frame limit",
    lambda t: _frames(publish_request(t, MAX_MESSAGE + 1), MAX_FRAME),
    "close 1009, TCP closed",
    True,
)
_limit_case(
    "9.5",
    "frame header declaring 2^40 bytes, payload never sent",
    lambda t: frame(TEXT, b"", length=1 << 40),
    "close 1009 from the header alone, TCP closed",
    True,
)


@case(
    "9.6",
    "9 limits",
    f"websockets client sends one {MAX_MESSAGE + 1}-byte message",
    "connection closed by the server with 1009",
    group="limits",
)
def _(ctx):
    with ctx.ws("/topics/conf/ws") as ws:
        ws.send(publish_request("conf", MAX_MESSAGE + 1))
        try:
            while True:
                ws.recv(timeout=10)
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
        except TimeoutError:
            code = "timeout"
    return f"server's close code {code}", code == 1009


@case(
    "K.1",
    "keepalive",
    "client answering pings, 3 server pings (ws.ping_interval_ms = 500)",
    "pings arrive; the stream stays open and delivers",
    group="limits",
)
def _(ctx):
    topic = topic_of("K.1")
    raw = ctx.raw(f"/topics/{topic}/ws")
    raw.answer_pings = False
    pings, deadline = 0, time.monotonic() + 30
    while pings < 3 and time.monotonic() < deadline:
        f = raw.next_frame(timeout=max(0.0, deadline - time.monotonic()))
        if f is None or f.opcode != PING:
            return f"unexpected {f!r} after {pings} pings", False
        raw.send_frame(PONG, f.payload)
        pings += 1
    ctx.publish(topic, "still here")
    raw.answer_pings = True
    f = raw.next_data()
    raw.close()
    ok = pings == 3 and f is not None and b"still here" in f.payload
    return f"{pings} pings answered; event after: {f is not None}", ok


@case(
    "K.2",
    "keepalive",
    "client that never answers pings (ws.ping_interval_ms = 500)",
    "a ping, then close 1008, TCP closed",
    group="limits",
)
def _(ctx):
    raw = ctx.raw()
    raw.answer_pings = False
    f, before = raw.until_close(timeout=30)
    closed = raw.wait_eof()
    pinged = any(b.opcode == PING for b in before)
    code = None if f is None else f.close_code()
    return f"pinged: {pinged}, close {code}, TCP closed: {closed}", pinged and code == 1008 and closed
