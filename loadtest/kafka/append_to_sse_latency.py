#!/usr/bin/env python3
"""Kafka append -> SSE receipt latency through Sluicegate, open loop.

An independent producer (kafka-python) sends records at a fixed rate, each carrying its
*scheduled* send time; one SSE client (a raw socket, no buffering library) reads them from the
gateway and records receipt - scheduled, so a stalled producer, broker or gateway cannot hide
its delay (no coordinated omission). Prints p50/p90/p99/max and loss.

Usage: append_to_sse_latency.py --broker 127.0.0.1:19092 --gateway 127.0.0.1:8080 \
         --topic T --rate 500 --seconds 10
The topic must exist and be in the gateway's kafka.topics.
"""
import argparse
import socket
import threading
import time

from kafka import KafkaProducer


def reader(gateway, topic, latencies, stop, ready):
    host, port = gateway.split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(f"GET /topics/{topic}/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    s.settimeout(0.5)
    buf = b""
    while not stop.is_set():
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        now = time.time_ns()
        buf += chunk
        if not ready.is_set() and b": ok" in buf:
            ready.set()
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.startswith(b"data: lat "):
                sched = int(line.split()[2])
                latencies.append((now - sched) / 1e6)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", required=True)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    latencies, stop, ready = [], threading.Event(), threading.Event()
    t = threading.Thread(target=reader, args=(a.gateway, a.topic, latencies, stop, ready), daemon=True)
    t.start()
    ready.wait(10)
    producer = KafkaProducer(bootstrap_servers=a.broker, linger_ms=0, acks=1)
    n = int(a.rate * a.seconds)
    start = time.time_ns() + 200_000_000
    for i in range(n):
        sched = start + i * 1_000_000_000 // a.rate
        delay = (sched - time.time_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        producer.send(a.topic, value=f"lat {sched} {i}".encode())
    producer.flush()
    deadline = time.time() + 10
    while len(latencies) < n and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    got = sorted(latencies)
    def q(p):
        return got[min(len(got) - 1, int(p * len(got)))] if got else float("nan")
    print(f"rate={a.rate}/s seconds={a.seconds} sent={n} received={len(got)} lost={n - len(got)}")
    print(f"latency_ms p50={q(0.5):.2f} p90={q(0.9):.2f} p99={q(0.99):.2f} max={(got[-1] if got else float('nan')):.2f}")


if __name__ == "__main__":
    main()
