"""Conformance cases after Autobahn|Testsuite categories 5 and 6: fragmentation (reassembly,
control frames between fragments, continuation and data frames out of place, fragmented
control frames) and UTF-8 (valid multi-byte text whole and split across fragments; invalid,
overlong and surrogate sequences, whole, split, and in a non-final fragment).
"""

import json

from rawws import CLOSE, CONT, PING, PONG, TEXT, frame
from support import answer_to, case, expect_close, publish_request, raw_answer, topic_of


def _publish_in(raw, topic, pieces):
    """Sends `pieces` (bytes) as one fragmented text message."""
    out = b""
    for i, p in enumerate(pieces):
        out += frame(TEXT if i == 0 else CONT, p, fin=i == len(pieces) - 1)
    raw.send(out)


def _ack_and_event(raw):
    """Reads two JSON messages: (ack or None, event or None)."""
    ack = event = None
    for _ in range(2):
        v = raw_answer(raw)
        if v is None:
            break
        if "topic" in v:
            event = v
        elif v.get("type") == "ack":
            ack = v
    return ack, event


@case("5.1", "5 fragmentation", "publish request in 3 fragments (websockets client)", "ack; event")
def _(ctx):
    topic = topic_of("5.1")
    with ctx.ws(f"/topics/{topic}/ws") as ws:
        req = publish_request(topic, 300)
        ws.send([req[:100], req[100:200], req[200:]])
        ack, events = answer_to(ws, 1)
    return ack["type"], ack["type"] == "ack"


@case("5.2", "5 fragmentation", "publish request sent one byte per fragment", "ack; event data intact")
def _(ctx):
    topic = topic_of("5.2")
    raw = ctx.raw(f"/topics/{topic}/ws")
    req = publish_request(topic, 120).encode()
    _publish_in(raw, topic, [req[i : i + 1] for i in range(len(req))])
    ack, event = _ack_and_event(raw)
    raw.close()
    want = json.loads(req)["data"]
    ok = ack is not None and event is not None and event["data"] == want
    return f"ack: {ack is not None}, event intact: {bool(event) and event['data'] == want}", ok


@case("5.3", "5 fragmentation", "empty first and middle fragments", "ack")
def _(ctx):
    topic = topic_of("5.3")
    raw = ctx.raw(f"/topics/{topic}/ws")
    _publish_in(raw, topic, [b"", b"", publish_request(topic, 100).encode()])
    ack, _ = _ack_and_event(raw)
    raw.close()
    return f"ack: {ack is not None}", ack is not None


@case(
    "5.4",
    "5 fragmentation",
    "ping between two fragments of a publish request",
    "pong (same payload) before the ack; ack",
)
def _(ctx):
    topic = topic_of("5.4")
    raw = ctx.raw(f"/topics/{topic}/ws")
    req = publish_request(topic, 100).encode()
    raw.send(frame(TEXT, req[:40], fin=False) + frame(PING, b"between"))
    pong = raw.next_frame()
    raw.send(frame(CONT, req[40:], fin=True))
    ack, _ = _ack_and_event(raw)
    raw.close()
    pong_ok = pong is not None and pong.opcode == PONG and pong.payload == b"between"
    return f"pong: {pong_ok}, ack: {ack is not None}", pong_ok and ack is not None


def _close_case(cid, cat, what, data, code):
    @case(cid, cat, what, f"close {code}, TCP closed")
    def run(ctx):
        raw = ctx.raw()
        raw.send(data)
        return expect_close(raw, code)


_close_case("5.5", "5 fragmentation", "continuation frame with no message started", frame(CONT, b"x"), 1002)
_close_case(
    "5.6",
    "5 fragmentation",
    "continuation (FIN) with no message started, after a complete message",
    frame(TEXT, b'{"op":"x"}') + frame(CONT, b"x", fin=True),
    1002,
)
_close_case(
    "5.7",
    "5 fragmentation",
    "new text frame while a fragmented message is open",
    frame(TEXT, b'{"op":', fin=False) + frame(TEXT, b'"x"}', fin=True),
    1002,
)
_close_case("5.8", "5 fragmentation", "fragmented ping (FIN=0)", frame(PING, b"a", fin=False) + frame(CONT, b"b"), 1002)
_close_case("5.9", "5 fragmentation", "fragmented pong (FIN=0)", frame(PONG, b"a", fin=False) + frame(CONT, b"b"), 1002)
_close_case(
    "5.10",
    "5 fragmentation",
    "fragmented close (FIN=0)",
    frame(CLOSE, b"\x03\xe8", fin=False) + frame(CONT, b"", fin=True),
    1002,
)

TEXTS = {
    "two-byte": "héllo wörld ñ",
    "three-byte": "✓ 日本語 €",
    "four-byte": "𝄞 😀 𐍈",
    "boundaries": "\u007f\u0080\u07ff\u0800\uffff\U00010000\U0010ffff",
    "noncharacters": "\ufffe\uffff\U0001fffe",
}


def _valid_utf8_case(cid, name, text, split):
    how = "split inside every multi-byte character" if split else "in one frame"
    @case(cid, "6 UTF-8", f"valid {name} text ({how})", "ack; event data identical")
    def run(ctx):
        topic = topic_of(cid)
        req = json.dumps({"op": "publish", "id": 1, "topic": topic, "data": text}, ensure_ascii=False)
        body = req.encode()
        raw = ctx.raw(f"/topics/{topic}/ws")
        if split:
            # Cut after the first byte of every multi-byte sequence.
            cuts = [i + 1 for i, b in enumerate(body) if b >= 0xC0]
            bounds = [0, *cuts, len(body)]
            _publish_in(raw, topic, [body[a:b] for a, b in zip(bounds, bounds[1:])])
        else:
            raw.send_frame(TEXT, body)
        ack, event = _ack_and_event(raw)
        raw.close()
        same = event is not None and event["data"] == text
        return f"ack: {ack is not None}, identical: {same}", ack is not None and same


for split, group in ((False, 1), (True, 2)):
    for i, (name, text) in enumerate(TEXTS.items(), 1):
        _valid_utf8_case(f"6.{group}.{i}", name, text, split=split)

INVALID = {
    "byte 0xFF": b"\xff",
    "lone continuation byte 0x80": b"\x80",
    "overlong '/' (C0 AF)": b"\xc0\xaf",
    "overlong 3-byte NUL (E0 80 80)": b"\xe0\x80\x80",
    "overlong 4-byte (F0 80 80 AF)": b"\xf0\x80\x80\xaf",
    "surrogate U+D800 (ED A0 80)": b"\xed\xa0\x80",
    "surrogate U+DFFF (ED BF BF)": b"\xed\xbf\xbf",
    "surrogate pair as CESU-8 (ED A0 BD ED B2 A9)": b"\xed\xa0\xbd\xed\xb2\xa9",
    "above U+10FFFF (F4 90 80 80)": b"\xf4\x90\x80\x80",
    "5-byte sequence (F8 88 80 80 80)": b"\xf8\x88\x80\x80\x80",
    "truncated at message end (E2 9C)": b"\xe2\x9c",
}


def _invalid_case(cid, name, bad):
    @case(cid, "6 UTF-8", f"text frame with {name}", "close 1007, TCP closed")
    def run(ctx):
        raw = ctx.raw()
        raw.send_frame(TEXT, b'{"data":"ok' + bad)
        return expect_close(raw, 1007)


for i, (name, bad) in enumerate(INVALID.items(), 1):
    _invalid_case(f"6.3.{i}", name, bad)

_close_case(
    "6.4.1",
    "6 UTF-8",
    "valid prefix ending in a lead byte, invalid continuation in the next fragment",
    frame(TEXT, b'{"data":"\xce', fin=False) + frame(CONT, b'A"}', fin=True),
    1007,
)
_close_case(
    "6.4.2",
    "6 UTF-8",
    "surrogate split across three fragments",
    frame(TEXT, b"a\xed", fin=False) + frame(CONT, b"\xa0", fin=False) + frame(CONT, b"\x80"),
    1007,
)
_close_case(
    "6.4.3",
    "6 UTF-8",
    "invalid byte in a non-final fragment, no final fragment sent (fail fast)",
    frame(TEXT, b'{"data":"\xff', fin=False),
    1007,
)
