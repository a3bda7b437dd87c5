"""GRIP origin for Pushpin in the load test: answers every GET /topics/{t}/events by holding a
stream on channel t (Grip-Hold: stream), with SSE content type and an optional keep-alive; and
WebSocket-over-HTTP for /topics/{t}/ws (the route needs `over_http`): a connection's OPEN is
accepted and subscribed to channel t, with a keep-alive ping, and its CLOSE is echoed;
whatever else a client sends is dropped."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    heartbeat_s = 0

    def do_GET(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 3 or parts[0] != "topics" or parts[2] != "events":
            self.send_error(404)
            return
        body = b": ok\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Grip-Hold", "stream")
        self.send_header("Grip-Channel", parts[1])
        if self.heartbeat_s > 0:
            self.send_header("Grip-Keep-Alive", ":\\n\\n; format=cstring; timeout=%d" % self.heartbeat_s)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        """WebSocket-over-HTTP: one POST per batch of a connection's events."""
        parts = self.path.split("?")[0].strip("/").split("/")
        ctype = self.headers.get("Content-Type", "")
        if len(parts) != 3 or parts[0] != "topics" or parts[2] != "ws" \
                or not ctype.startswith("application/websocket-events"):
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        out = b""
        if body.startswith(b"OPEN\r\n"):
            out += b"OPEN\r\n" + ws_text("c:" + json.dumps(
                {"type": "subscribe", "channel": parts[1]}))
            if self.heartbeat_s > 0:
                out += ws_text("c:" + json.dumps({"type": "keep-alive", "content": "",
                                                   "message-type": "ping",
                                                   "timeout": self.heartbeat_s}))
        elif b"CLOSE" in body:
            out += b"CLOSE\r\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/websocket-events")
        self.send_header("Sec-WebSocket-Extensions", "grip")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def ws_text(text):
    data = text.encode()
    return b"TEXT %x\r\n%s\r\n" % (len(data), data)


class Server(ThreadingHTTPServer):
    # Thousands of subscribers arrive at once: a deep listen queue (read at bind time).
    request_queue_size = 4096
    daemon_threads = True


def main():
    port = int(sys.argv[1])
    Handler.heartbeat_s = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    server = Server(("127.0.0.1", port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
