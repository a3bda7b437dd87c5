"""GRIP origin for Pushpin in the load test: answers every GET /topics/{t}/events by holding a
stream on channel t (Grip-Hold: stream), with SSE content type and an optional keep-alive."""
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

    def log_message(self, *args):
        pass


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
