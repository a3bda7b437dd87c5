#!/usr/bin/env python3
"""A webhook receiver and WebSub subscriber for the end-to-end tests, independent of the
gateway's code: it verifies Standard Webhooks signatures with the PyPI `standardwebhooks`
package and WebSub `X-Hub-Signature` with Python's `hmac`, answers on a schedule the test
sets, and logs every request it gets as one JSON line.

    receiver.py --port P --log FILE [--secret whsec_...] [--hub-secret S]

Control (from the test, on the same port):
    POST /_plan   body: JSON list of answers for the next deliveries, in order, e.g.
                  [{"status": 500}, {"status": 429, "retry_after": "1"}, {"sleep": 3},
                   {"status": 410}, {"status": 302, "location": "http://..."},
                   {"body": {...}} (a JSON answer, for hooks)]; once used up, deliveries get 200. `{"default": {...}}`
                  replaces the answer after the plan.
    POST /_secret body: a new Standard Webhooks secret to verify with (rotation).
Verification GETs (WebSub intent) are answered by echoing hub.challenge, unless
`/_plan` set {"verify": "refuse"} as its first entry for GETs ({"verify": "echo"} resets).
Every request to any other path is logged: method, path, query, headers, body, verified.
"""
import argparse
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LOCK = threading.Lock()
STATE = {"plan": [], "default": {"status": 200}, "verify": "echo", "secret": None,
         "hub_secret": None, "log": None}


def log(entry):
    with LOCK:
        with open(STATE["log"], "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


def verify_standard(headers, body):
    secret = STATE["secret"]
    if not secret:
        return None
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
        return True
    except WebhookVerificationError:
        return False


def verify_hub(headers, body):
    secret = STATE["hub_secret"]
    sig = headers.get("x-hub-signature")
    if not secret:
        return None if sig is None else False
    if not sig or "=" not in sig:
        return False
    method, digest = sig.split("=", 1)
    algo = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}.get(method)
    if algo is None:
        return False
    expected = hmac.new(secret.encode(), body, algo).hexdigest()
    return hmac.compare_digest(expected, digest)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _body(self):
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def _answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        entry = {"method": "GET", "path": url.path, "query": query, "at": time.time(),
                 "headers": {k.lower(): v for k, v in self.headers.items()}}
        log(entry)
        challenge = query.get("hub.challenge")
        if challenge is not None and STATE["verify"] == "echo":
            self._answer(200, challenge.encode(), [("content-type", "text/plain")])
        elif challenge is not None:
            self._answer(404, b"not my subscription")
        else:
            self._answer(200, b"ok")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        body = self._body()
        if url.path == "/_plan":
            plan = json.loads(body)
            with LOCK:
                if isinstance(plan, dict):
                    STATE["default"] = plan.get("default", STATE["default"])
                    STATE["verify"] = plan.get("verify", STATE["verify"])
                    STATE["plan"] = plan.get("plan", [])
                else:
                    STATE["plan"] = plan
            self._answer(200, b"ok")
            return
        if url.path == "/_secret":
            STATE["secret"] = body.decode()
            self._answer(200, b"ok")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        with LOCK:
            answer = STATE["plan"].pop(0) if STATE["plan"] else dict(STATE["default"])
        entry = {
            "method": "POST", "path": url.path, "query": url.query, "headers": headers,
            "body": body.decode("utf-8", "replace"), "at": time.time(),
            "verified": verify_standard(headers, body) if "webhook-id" in headers
            else verify_hub(headers, body),
            "answered": answer,
        }
        log(entry)
        if "sleep" in answer:
            time.sleep(answer["sleep"])
        extra = []
        if "retry_after" in answer:
            extra.append(("retry-after", str(answer["retry_after"])))
        if "location" in answer:
            extra.append(("location", answer["location"]))
        body = b"answer body"
        if "body" in answer:
            body = json.dumps(answer["body"]).encode()
            extra.append(("content-type", "application/json"))
        try:
            self._answer(answer.get("status", 200), body, extra)
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--secret")
    p.add_argument("--hub-secret")
    a = p.parse_args()
    STATE.update(log=a.log, secret=a.secret, hub_secret=a.hub_secret)
    open(a.log, "a").close()
    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # a gateway killed mid-request (kill -9 tests) is expected

    server = Server(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
