"""Conformance cases after Autobahn|Testsuite categories 1-4: framing (payload lengths at the
7/16/64-bit length boundaries, both directions), pings and pongs, reserved bits, reserved
opcodes.
"""

import json

from rawws import PING, PONG, TEXT, frame
from support import (
    answer_to,
    case,
    describe_close,
    expect_close,
    publish_request,
    raw_answer,
    recv_json,
    topic_of,
)

SIZES = [0, 125, 126, 65535, 65536]


def length_form(n):
    return 7 if n <= 125 else 16 if n <= 0xFFFF else 64


def payload_of(n):
    return ("abcdefghij" * (n // 10 + 1))[:n]


def _server_frame_case(cid, n):
    @case(
        cid,
        "1 framing",
        f"{n}-byte event published over HTTP, read raw (?mode=raw) from the socket",
        f"one FIN text frame, {length_form(n)}-bit length, payload = the data",
    )
    def run(ctx):
        topic = topic_of(cid)
        raw = ctx.raw(f"/topics/{topic}/ws?mode=raw")
        data = payload_of(n)
        ctx.publish(topic, data)
        f = raw.next_data()
        raw.close()
        if f is None:
            return "no frame", False
        obs = f"op {f.opcode}, fin {f.fin}, {f.length_bits}-bit length, {len(f.payload)} B"
        ok = f.opcode == TEXT and f.fin and f.length_bits == length_form(n)
        ok = ok and f.payload == data.encode()
        return obs + ("" if f.payload == data.encode() else ", payload differs"), ok


def _envelope_case(cid, n):
    @case(
        cid,
        "1 framing",
        f"{n}-byte event published over HTTP, read by the websockets client (JSON)",
        "envelope with data equal to what was published",
    )
    def run(ctx):
        topic = topic_of(cid)
        with ctx.ws(f"/topics/{topic}/ws") as ws:
            data = payload_of(n)
            ctx.publish(topic, data)
            v = recv_json(ws)
        return f"data of {len(v['data'])} chars, equal: {v['data'] == data}", v["data"] == data


def _client_frame_case(cid, n):
    @case(
        cid,
        "1 framing",
        f"client text frame of {n} bytes sent as a publish request (websockets client)",
        "error 400 (not a request), socket stays open" if n == 0 else "ack; the event carries the data",
    )
    def run(ctx):
        topic = topic_of(cid)
        with ctx.ws(f"/topics/{topic}/ws") as ws:
            if n == 0:
                ws.send("")
                v = recv_json(ws)
                ws.send(publish_request(topic, 200, rid=2))
                after, _ = answer_to(ws, 2)
                obs = f"{v.get('type')} {v.get('status')}; next request: {after['type']}"
                return obs, v.get("status") == 400 and after["type"] == "ack"
            req = publish_request(topic, n)
            ws.send(req)
            ack, events = answer_to(ws, 1)
            if not events:
                events.append(recv_json(ws))
        want = json.loads(req)["data"]
        got = events[0]["data"]
        return f"{ack['type']}; event data {len(got)} chars", ack["type"] == "ack" and got == want


for make, group in ((_server_frame_case, 1), (_envelope_case, 2), (_client_frame_case, 3)):
    for i, n in enumerate(SIZES, 1):
        make(f"1.{group}.{i}", n)


def _ping_case(cid, payload, what):
    @case(cid, "2 ping/pong", f"ping with {what}", "pong with the identical payload")
    def run(ctx):
        raw = ctx.raw()
        raw.send_frame(PING, payload)
        f = raw.next_frame()
        raw.close()
        if f is None:
            return "no answer", False
        same = f.opcode == PONG and f.payload == payload
        return f"op {f.opcode:#x}, {len(f.payload)} B, identical: {f.payload == payload}", same


_ping_case("2.1", b"", "an empty payload")
_ping_case("2.2", b"Hello, World!", "a short text payload")
_ping_case("2.3", bytes(range(0, 125)), "125 binary bytes (the most a control frame holds)")
_ping_case("2.4", b"\x00\xff\xfe\xfd", "non-UTF-8 binary bytes")


@case("2.5", "2 ping/pong", "ping with 126 bytes", "close 1002, TCP closed")
def _(ctx):
    raw = ctx.raw()
    raw.send_frame(PING, b"x" * 126)
    return expect_close(raw, 1002)


@case("2.6", "2 ping/pong", "unsolicited pong, then a publish request", "pong ignored; ack")
def _(ctx):
    raw = ctx.raw(f"/topics/{topic_of('2.6')}/ws")
    raw.send_frame(PONG, b"unsolicited")
    raw.send_frame(TEXT, publish_request(topic_of("2.6"), 100))
    kinds = []
    for _ in range(2):
        v = raw_answer(raw)
        kinds.append("none" if v is None else "event" if "topic" in v else v["type"])
    raw.close()
    return " + ".join(sorted(kinds)), sorted(kinds) == ["ack", "event"]


@case("2.7", "2 ping/pong", "10 pings with distinct payloads sent back to back", "10 pongs, same order")
def _(ctx):
    raw = ctx.raw()
    sent = [f"ping-{i}".encode() for i in range(10)]
    raw.send(b"".join(frame(PING, p) for p in sent))
    got = []
    for _ in sent:
        f = raw.next_frame()
        if f is None:
            break
        got.append(f.payload if f.opcode == PONG else b"?")
    raw.close()
    return f"{len(got)} pongs, in order: {got == sent}", got == sent


@case("2.8", "2 ping/pong", "websockets client ping() with payload", "its pong arrives (client check)")
def _(ctx):
    with ctx.ws("/topics/conf/ws") as ws:
        ok = ws.ping(b"conformance").wait(10)
    return f"pong received: {ok}", ok


def _rsv_case(cid, rsv, opcode, what):
    @case(cid, "3 reserved bits", f"{what}", "close 1002, TCP closed")
    def run(ctx):
        raw = ctx.raw()
        payload = b"ping" if opcode == PING else b'{"op":"x"}'
        raw.send_frame(opcode, payload, rsv=rsv)
        return expect_close(raw, 1002)


_rsv_case("3.1", 4, TEXT, "text frame with RSV1 (no extension negotiated)")
_rsv_case("3.2", 2, TEXT, "text frame with RSV2")
_rsv_case("3.3", 1, TEXT, "text frame with RSV3")
_rsv_case("3.4", 7, TEXT, "text frame with RSV1+2+3")
_rsv_case("3.5", 4, PING, "ping with RSV1")


@case("3.6", "3 reserved bits", "valid publish request, then a frame with RSV2", "an answer, then close 1002")
def _(ctx):
    topic = topic_of("3.6")
    raw = ctx.raw(f"/topics/{topic}/ws")
    raw.send_frame(TEXT, publish_request(topic, 100))
    first = raw_answer(raw)
    raw.send_frame(TEXT, b"{}", rsv=2)
    code, obs = describe_close(raw)
    got = "nothing" if first is None else "event" if "topic" in first else first["type"]
    return f"{got}, then {obs}", first is not None and code == 1002


def _opcode_case(cid, opcode):
    kind = "data" if opcode < 8 else "control"
    @case(cid, "4 opcodes", f"reserved {kind} opcode {opcode}", "close 1002, TCP closed")
    def run(ctx):
        raw = ctx.raw()
        raw.send_frame(opcode, b"reserved")
        return expect_close(raw, 1002)


for i, op in enumerate([3, 4, 5, 6, 7], 1):
    _opcode_case(f"4.1.{i}", op)
for i, op in enumerate([11, 12, 13, 14, 15], 1):
    _opcode_case(f"4.2.{i}", op)
