#!/usr/bin/env python3
"""Does a large fan-out starve the rest of its shard? Measure it side by side.

One Sluicegate shard (CPU 0) serves a heavy fan-out driven by the load tool (CPU 1): N
subscribers of one topic at R events/s. Meanwhile this script, also on CPU 1, publishes to a
second topic once every 20 ms over a keep-alive connection, with one SSE subscriber of that
topic, and records for each of its events the publish round trip (the shard's HTTP path) and
the publish-to-receipt latency (the other topic's delivery), and how long a new connection
takes to be accepted and answered (`GET /healthz`). The same probe runs once with the shard
idle, so the table shows what the fan-out costs everybody else.

Usage: loadtest/fairness.py [--bin target/release/sluicegate] [--loadtest target/release/loadtest]
       [--subscribers 10000] [--rate 20] [--secs 8]
"""
import argparse
import http.client
import os
import socket
import statistics
import subprocess
import threading
import time

from variants import free_port, wait_healthy


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


class OtherTopicSubscriber(threading.Thread):
    """Reads the probe topic's SSE stream; records when each `data: <n>` line arrives."""

    def __init__(self, port, topic):
        super().__init__(daemon=True)
        self.arrived = {}
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(f"GET /topics/{topic}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.buf = b""

    def run(self):
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            now = time.monotonic()
            self.buf += chunk
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if line.startswith(b"data: probe-"):
                    self.arrived[int(line[len(b"data: probe-"):])] = now


def probe(port, secs):
    """Publish to the probe topic every 20 ms; returns (publish RTTs, delivery latencies,
    accept+answer times), all in ms."""
    topic = f"fairness-probe-{os.getpid()}-{time.time_ns()}"
    sub = OtherTopicSubscriber(port, topic)
    sub.start()
    time.sleep(0.3)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sent = {}
    rtts, accepts = [], []
    deadline = time.monotonic() + secs
    n = 0
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        conn.request("POST", f"/topics/{topic}/events", body=f"probe-{n}")
        conn.getresponse().read()
        rtts.append((time.monotonic() - t0) * 1000)
        sent[n] = t0
        n += 1
        if n % 10 == 0:
            t1 = time.monotonic()
            fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            fresh.request("GET", "/healthz")
            fresh.getresponse().read()
            fresh.close()
            accepts.append((time.monotonic() - t1) * 1000)
        time.sleep(max(0.0, 0.02 - (time.monotonic() - t0)))
    time.sleep(1.0)
    deliveries = [(sub.arrived[i] - t) * 1000 for i, t in sent.items() if i in sub.arrived]
    lost = len(sent) - len(deliveries)
    return rtts, deliveries, accepts, lost


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/release/sluicegate")
    ap.add_argument("--loadtest", default="target/release/loadtest")
    ap.add_argument("--subscribers", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--secs", type=int, default=8)
    args = ap.parse_args()
    # This probe shares the load tool's CPU, never the server's.
    os.sched_setaffinity(0, {1})
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", "0", args.bin, "--listen", f"127.0.0.1:{port}", "--shards", "1",
         "--set", "sse.heartbeat_ms=60000", "--set", "storage.mode=memory"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        wait_healthy(port, server)
        rows.append(("shard idle", probe(port, args.secs)))
        tool = subprocess.Popen(
            ["taskset", "-c", "1", args.loadtest, "--sub-addr", f"127.0.0.1:{port}",
             "--subscribers", str(args.subscribers), "--rate", str(args.rate),
             "--step-secs", str(args.secs + 6), "--settle-secs", "1", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Let every subscriber connect and the publishing start before probing.
        time.sleep(args.subscribers / 5000 + 3)
        rows.append((f"{args.subscribers} subscribers x {args.rate:g} events/s on another topic",
                     probe(port, args.secs)))
        tool.wait(timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print("| shard | publish round trip p50 / p99 ms | other topic's delivery p50 / p99 / max ms "
          "| new connection answered p50 / p99 ms | lost |")
    print("|---|---|---|---|---|")
    for name, (rtts, deliveries, accepts, lost) in rows:
        print(f"| {name} | {statistics.median(rtts):.2f} / {pct(rtts, 99):.2f} | "
              f"{statistics.median(deliveries):.2f} / {pct(deliveries, 99):.2f} / "
              f"{max(deliveries):.2f} | {statistics.median(accepts):.2f} / "
              f"{pct(accepts, 99):.2f} | {lost} |")


if __name__ == "__main__":
    main()
