"""Sluicegate's own WebSocket cases: the opening handshake and its refusals, subprotocol
negotiation, raw mode, the JSON envelope and the requests a client may send, resume with
`lastEventId`, and the drain close (1001) on SIGTERM.
"""

import json
import os
import signal

from websockets.exceptions import ConnectionClosed

from rawws import BINARY, accept_for, http_exchange, upgrade_request
from support import answer_to, case, expect_close, publish_request, recv_json, topic_of


def _handshake(ctx, path="/topics/conf/ws", **kw):
    request, key = upgrade_request(ctx.addr, path, **kw)
    sock, answer = http_exchange(ctx.addr, request)
    sock.close()
    return answer, key


@case("H.1", "handshake", "valid upgrade", "101, correct Sec-WebSocket-Accept, no subprotocol")
def _(ctx):
    a, key = _handshake(ctx)
    h = a.headers
    ok = (
        a.status == 101
        and h.get("upgrade", "").lower() == "websocket"
        and "upgrade" in h.get("connection", "").lower()
        and h.get("sec-websocket-accept") == accept_for(key)
        and "sec-websocket-protocol" not in h
    )
    return f"{a.status}, accept ok: {h.get('sec-websocket-accept') == accept_for(key)}", ok


def _refusal(cid, what, want, check_header=None, **kw):
    @case(cid, "handshake", what, f"{want}" + (f", {check_header[0]}: {check_header[1]}" if check_header else ""))
    def run(ctx):
        a, _ = _handshake(ctx, **kw)
        obs = f"{a.status}"
        ok = a.status == want
        if check_header:
            got = a.headers.get(check_header[0].lower())
            obs += f", {check_header[0]}: {got}"
            ok = ok and got == check_header[1]
        return obs, ok


_refusal("H.2", "no Sec-WebSocket-Key", 400, omit=("Sec-WebSocket-Key",))
_refusal("H.3", "key that is not base64 of 16 bytes", 400, key="c2hvcnQ=")
_refusal("H.4", "Sec-WebSocket-Version: 8", 426, ("Sec-WebSocket-Version", "13"), headers={"Sec-WebSocket-Version": "8"})
_refusal("H.5", "no Sec-WebSocket-Version", 426, ("Sec-WebSocket-Version", "13"), omit=("Sec-WebSocket-Version",))
_refusal("H.6", "POST instead of GET", 405, ("Allow", "GET"), method="POST")
_refusal("H.7", "HTTP/1.0", 400, version="HTTP/1.0")
_refusal("H.8", "no Upgrade header", 400, omit=("Upgrade",))
_refusal("H.9", "/ws without any topic (subscribes by message)", 101, path="/ws")
_refusal("H.10", "malformed lastEventId", 400, path="/topics/conf/ws?lastEventId=not-an-id")
_refusal("H.11", "Connection: keep-alive, Upgrade (token list)", 101, headers={"Connection": "keep-alive, Upgrade"})


@case("H.12", "handshake", "two Sec-WebSocket-Key fields", "400")
def _(ctx):
    request, _ = upgrade_request(ctx.addr, "/topics/conf/ws")
    request = request.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n")
    sock, a = http_exchange(ctx.addr, request)
    sock.close()
    return f"{a.status}", a.status == 400


def _protocol_case(cid, offered, want, raw_expected):
    mode = "raw data" if raw_expected else "JSON envelope"
    @case(cid, "subprotocol", f"offered `{offered}`", f"{want or 'no Sec-WebSocket-Protocol'}; {mode}")
    def run(ctx):
        topic = topic_of(cid)
        raw = ctx.raw(f"/topics/{topic}/ws", headers={"Sec-WebSocket-Protocol": offered})
        chosen = raw.handshake.headers.get("sec-websocket-protocol")
        ctx.publish(topic, '{"n":1}')
        f = raw.next_data()
        raw.close()
        got_raw = f is not None and f.payload == b'{"n":1}'
        got = "raw" if got_raw else "JSON" if f is not None and b'"topic"' in f.payload else "?"
        return f"{chosen or 'none'}; {got}", chosen == want and got_raw == raw_expected and got != "?"


_protocol_case("P.1", "sluicegate.v1", "sluicegate.v1", False)
_protocol_case("P.2", "chat, sluicegate.raw", "sluicegate.raw", True)
_protocol_case("P.3", "sluicegate.raw, sluicegate.v1", "sluicegate.raw", True)
_protocol_case("P.4", "sluicegate.v1, sluicegate.raw", "sluicegate.v1", False)
_protocol_case("P.5", "chat", None, False)


@case("P.6", "subprotocol", "websockets client with subprotocols=[sluicegate.raw]", "negotiated; raw data")
def _(ctx):
    topic = topic_of("P.6")
    with ctx.ws(f"/topics/{topic}/ws", subprotocols=["sluicegate.raw"]) as ws:
        ctx.publish(topic, "plain text")
        got = ws.recv(timeout=10)
        proto = ws.subprotocol
    return f"{proto}; {got!r}", proto == "sluicegate.raw" and got == "plain text"


@case("R.1", "raw mode", "?mode=raw, multi-line non-ASCII data", "each frame is exactly the data")
def _(ctx):
    topic = topic_of("R.1")
    data = ["héllo\nwörld ✓", "tabs\tand \"quotes\" \\ 𝄞\n", '{"json":"as is"}']
    with ctx.ws(f"/topics/{topic}/ws?mode=raw") as ws:
        for d in data:
            ctx.publish(topic, d)
        got = [ws.recv(timeout=10) for _ in data]
    return f"{len(got)} frames, identical: {got == data}", got == data


@case("R.2", "raw mode", "a raw client sends text", "ignored: no answer, still delivers")
def _(ctx):
    topic = topic_of("R.2")
    with ctx.ws(f"/topics/{topic}/ws?mode=raw") as ws:
        ws.send(publish_request(topic, 100))
        ctx.publish(topic, "after")
        got = ws.recv(timeout=10)
    return f"first frame {got!r}", got == "after"


_refusal("R.3", "raw mode on /ws?topic=a&topic=b", 400, path="/ws?topic=a&topic=b&mode=raw")


@case("R.4", "raw mode", "binary message in raw mode", "close 1003, TCP closed")
def _(ctx):
    raw = ctx.raw("/topics/conf/ws?mode=raw")
    raw.send_frame(BINARY, b"\x01\x02")
    return expect_close(raw, 1003)


@case(
    "R.5",
    "raw mode",
    "data with CRLF and CR line breaks (raw and JSON)",
    "each break arrives as LF: the text an SSE client sees (by design, src/broker/wire.rs)",
)
def _(ctx):
    topic = topic_of("R.5")
    with ctx.ws(f"/topics/{topic}/ws?mode=raw") as raw, ctx.ws(f"/topics/{topic}/ws") as js:
        ctx.publish(topic, "a\r\nb\rc\nd")
        got_raw, got_json = raw.recv(timeout=10), json.loads(js.recv(timeout=10))["data"]
    return f"raw {got_raw!r}, JSON {got_json!r}", got_raw == got_json == "a\nb\nc\nd"


@case("J.1", "envelope", "typed and untyped events", "keys topic,id,type,data; id = HTTP id; type null when untyped")
def _(ctx):
    topic = topic_of("J.1")
    with ctx.ws(f"/topics/{topic}/ws") as ws:
        id1 = ctx.publish(topic, "a\n\"b\"", query="?event=created")
        id2 = ctx.publish(topic, "plain")
        v1, v2 = recv_json(ws), recv_json(ws)
    ok = list(v1) == ["topic", "id", "type", "data"] and v1["id"] == id1 and v1["type"] == "created"
    ok = ok and v1["data"] == 'a\n"b"' and v2["type"] is None and v2["id"] == id2
    return f"keys {list(v1)}; types {v1['type']!r}, {v2['type']!r}", ok


@case("J.2", "envelope", "/ws?topic=a&topic=b", "events of both topics, each naming its topic")
def _(ctx):
    a, b = topic_of("J.2a"), topic_of("J.2b")
    with ctx.ws(f"/ws?topic={a}&topic={b}") as ws:
        ctx.publish(a, "A")
        ctx.publish(b, "B")
        got = sorted((v["topic"], v["data"]) for v in (recv_json(ws), recv_json(ws)))
    return f"{got}", got == [(a, "A"), (b, "B")]


def _request_case(cid, what, text, want_status, known=None):
    @case(cid, "requests", what, f"error {want_status}, request id echoed, socket open", known=known)
    def run(ctx):
        with ctx.ws("/topics/conf/ws") as ws:
            ws.send(text)
            v = recv_json(ws)
            rid = json.loads(text).get("id") if text.startswith("{") else None
        ok = v.get("type") == "error" and v.get("status") == want_status and v.get("id") == rid
        return f"{v.get('type')} {v.get('status')} id={v.get('id')!r}", ok


@case("J.3", "requests", "subscribe, then unsubscribe, by message on plain /ws",
      "ack naming the topic, then its event; after the unsubscribe ack nothing of it")
def _(ctx):
    a, b = topic_of("J.3a"), topic_of("J.3b")
    with ctx.ws("/ws") as ws:
        ws.send(json.dumps({"op": "subscribe", "id": "s1", "topics": [a, b]}))
        ack = recv_json(ws)
        ctx.publish(a, "A1")
        first = recv_json(ws)
        ws.send(json.dumps({"op": "unsubscribe", "id": 7, "topic": a}))
        gone = recv_json(ws)
        ctx.publish(a, "A2")
        ctx.publish(b, "B1")
        after = recv_json(ws)
    ok = ack == {"type": "ack", "id": "s1", "topics": [a, b]}
    ok = ok and (first["topic"], first["data"]) == (a, "A1")
    ok = ok and gone == {"type": "ack", "id": 7, "topics": [b]}
    ok = ok and (after["topic"], after["data"]) == (b, "B1")
    return f"acks {ack.get('topics')} / {gone.get('topics')}; then {first.get('data')}, {after.get('data')}", ok


_request_case("J.4", "unsubscribe a topic not subscribed", '{"op":"unsubscribe","id":7,"topics":["x"]}', 404)
_request_case("J.5", "unknown op", '{"op":"frobnicate","id":[1]}', 400)
_request_case(
    "J.6",
    "unknown field",
    '{"op":"publish","id":2,"topic":"t","data":"d","extra":1}',
    400,
)
_request_case("J.7", "not JSON", "hello", 400)
_request_case("J.8", "publish to reserved gateway.*", '{"op":"publish","id":3,"topic":"gateway.x","data":"d"}', 403)
_request_case("J.9", "publish without data", '{"op":"publish","id":4,"topic":"t"}', 400)


@case("J.10", "requests", "publish with type, key, headers, idempotencyKey, sent twice", "two acks, same id; one event, typed")
def _(ctx):
    topic = topic_of("J.10")
    req = {"op": "publish", "topic": topic, "data": "once", "type": "t1", "key": "k",
           "idempotencyKey": "idem-1", "headers": {"Tenant": "a"}}
    with ctx.ws(f"/topics/{topic}/ws") as ws:
        ws.send(json.dumps({**req, "id": 1}))
        a1, ev = answer_to(ws, 1)
        ws.send(json.dumps({**req, "id": 2}))
        a2, ev2 = answer_to(ws, 2)
        ev += ev2
        ctx.publish(topic, "marker")
        while not any(e["data"] == "marker" for e in ev):
            ev.append(recv_json(ws))
    datas = [e["data"] for e in ev]
    ok = a1["type"] == a2["type"] == "ack" and a1["ids"] == a2["ids"]
    ok = ok and datas == ["once", "marker"] and ev[0]["type"] == "t1"
    return f"acks same id: {a1.get('ids') == a2.get('ids')}; events {datas}", ok


@case("J.11", "requests", "binary message (JSON mode)", "close 1003, TCP closed")
def _(ctx):
    raw = ctx.raw()
    raw.send_frame(BINARY, b'{"op":"publish"}')
    return expect_close(raw, 1003)


def _resume_case(cid, what, header):
    @case(cid, "resume", what, "exactly the events after that id, then live ones")
    def run(ctx):
        topic = topic_of(cid)
        ids = [ctx.publish(topic, f"e{i}") for i in range(5)]
        path = f"/topics/{topic}/ws"
        headers = {"Last-Event-ID": ids[1]} if header else None
        if not header:
            path += f"?lastEventId={ids[1]}"
        raw = ctx.raw(path, headers=headers)
        got = [json.loads(raw.next_data().payload) for _ in range(3)]
        ctx.publish(topic, "live")
        got.append(json.loads(raw.next_data().payload))
        raw.close()
        datas = [v["data"] for v in got]
        ok = datas == ["e2", "e3", "e4", "live"] and [v["id"] for v in got[:3]] == ids[2:]
        return f"{datas}", ok


_resume_case("E.1", "?lastEventId=<2nd of 5 ids>", header=False)
_resume_case("E.2", "Last-Event-ID header <2nd of 5 ids>", header=True)


@case("E.3", "resume", "multi-topic cursor from /ws?topic=a&topic=b", "the missed events of both topics only")
def _(ctx):
    a, b = topic_of("E.3a"), topic_of("E.3b")
    path = f"/ws?topic={a}&topic={b}"
    with ctx.ws(path) as ws:
        ctx.publish(a, "a1")
        cursor = recv_json(ws)["id"]
    ctx.publish(b, "b1")
    ctx.publish(a, "a2")
    with ctx.ws(f"{path}&lastEventId={cursor}") as ws:
        got = sorted(recv_json(ws)["data"] for _ in range(2))
        ctx.publish(b, "b2")
        got.append(recv_json(ws)["data"])
    return f"{got}", got == ["a2", "b1", "b2"]


@case("D.1", "drain", "SIGTERM with a JSON and a raw client open", "both get close 1001 after the last event; TCP closed", group="drain")
def _(ctx):
    topic = topic_of("D.1")
    ws = ctx.ws(f"/topics/{topic}/ws")
    raw = ctx.raw(f"/topics/{topic}/ws?mode=raw")
    ctx.publish(topic, "before")
    first = recv_json(ws)["data"]
    raw_first = raw.next_data()
    os.kill(ctx.pid, signal.SIGTERM)
    try:
        while True:
            ws.recv(timeout=15)
        code = None
    except ConnectionClosed as e:
        code = e.rcvd.code if e.rcvd else None
    except TimeoutError:
        code = "timeout"
    raw_obs, raw_ok = expect_close(raw, 1001, timeout=15)
    ok = first == "before" and raw_first is not None and code == 1001 and raw_ok
    return f"websockets: close {code}; raw: {raw_obs}", ok
