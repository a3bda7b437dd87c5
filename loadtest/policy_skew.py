#!/usr/bin/env python3
"""Does a publish limit split between shards hold under skewed load? (real gateway, 2 shards)

Starts the gateway with two shards, both pinned to SERVER_CPU (the gateway pins shard i to the
i-th CPU it may use, and `taskset -c 0` leaves it one), with `limits.publish_events` set. All
connections come from 127.0.0.1, so every publisher is the same anonymous principal and the
limit is one limit held across both shards (each shard holds a share, rebalanced from demand
every `limits.rebalance_ms`). Publisher processes run pinned to TOOL_CPU; each opens
keep-alive HTTP/1.1 connections and keeps only those answered from the shard it wants
(`x-sluicegate-shard`, SO_REUSEPORT spreads new connections), then publishes one small event
per request (`POST /topics/t{i}/events`), closed loop, as fast as it can, for `--secs`.

Patterns (--publishers N, default 10):
  a  90% of the publishers on shard 0, 10% on shard 1
  b  all on shard 0
  c  half on each shard
  d  all on shard 0 for the first half of the run, then all on shard 1

Counts 200s (admitted), 429s (refused) and anything else per second and in total. The limit
admits at most burst + per_s x elapsed; achieved/configured = (admitted / elapsed) / per_s.
The offered load must exceed the limit (429s present), or the run says so.

Usage: loadtest/policy_skew.py [--bin target/release/sluicegate] [--rate 2000] [--burst 200]
       [--secs 10] [--runs 3] [--publishers 10] [--patterns abcd] [--json PATH]
       loadtest/policy_skew.py --report PATH   (the table again, from a --json file)
"""
import argparse
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from variants import free_port, stop, wait_healthy  # noqa: E402

SERVER_CPU = "0"
TOOL_CPU = 1


class Conn:
    """One keep-alive HTTP/1.1 connection that reads whole responses (content-length)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, raw):
        """Send `raw`; return (status, headers dict, keep-alive)."""
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before a response")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside a body")
            self.buf += chunk
        self.buf = self.buf[n:]
        return status, headers, headers.get("connection", "").lower() != "close"

    def close(self):
        self.sock.close()


def conn_on(port, shard, tries=500):
    """A connection answered by `shard` (reconnect until SO_REUSEPORT gives one)."""
    probe = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
    for _ in range(tries):
        c = Conn(port)
        status, headers, alive = c.request(probe)
        if alive and headers.get("x-sluicegate-shard") == str(shard):
            return c
        c.close()
    raise RuntimeError(f"no connection on shard {shard} in {tries} tries")


def publisher(idx, port, plan, secs, barrier, start, out):
    """Publish as fast as possible following `plan` [(from_s, shard), ...]; put per-second
    counts {second: [ok, limited, other]} and totals on `out`."""
    os.sched_setaffinity(0, {TOOL_CPU})
    conns = {shard: conn_on(port, shard) for shard in {s for _, s in plan}}
    body = b'{"n":1}'
    raw = (f"POST /topics/t{idx}/events HTTP/1.1\r\nhost: x\r\n"
           f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
           ).encode() + body
    barrier.wait()
    t0 = start.value
    while time.monotonic() < t0:
        pass
    per_sec = {}
    reconnects = 0
    end = t0 + secs
    while True:
        now = time.monotonic()
        if now >= end:
            break
        el = now - t0
        shard = [s for at, s in plan if el >= at][-1]
        c = conns[shard]
        try:
            status, _, alive = c.request(raw)
        except (ConnectionError, OSError):
            status, alive = None, False
        # Count at the time the answer came back.
        sec = int(time.monotonic() - t0)
        row = per_sec.setdefault(sec, [0, 0, 0])
        if status == 200:
            row[0] += 1
        elif status == 429:
            row[1] += 1
        else:
            row[2] += 1
        if not alive:
            c.close()
            conns[shard] = conn_on(port, shard)
            reconnects += 1
    for c in conns.values():
        c.close()
    out.put((idx, per_sec, reconnects))


def plans(pattern, n, secs):
    if pattern == "a":
        k = max(1, round(n * 0.1))
        return [[(0, 0)]] * (n - k) + [[(0, 1)]] * k
    if pattern == "b":
        return [[(0, 0)]] * n
    if pattern == "c":
        return [[(0, 0)]] * (n // 2) + [[(0, 1)]] * (n - n // 2)
    if pattern == "d":
        return [[(0, 0), (secs / 2, 1)]] * n
    raise ValueError(pattern)


def run(binary, pattern, args):
    port = free_port()
    limit = f"{{per_s={args.rate},burst={args.burst}}}"
    server = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, binary, "--listen", f"127.0.0.1:{port}", "--shards", "2",
         "--set", f"limits.publish_events={limit}", "--set", "storage.mode=memory",
         *args.server_arg],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(port, server)
        ps = plans(pattern, args.publishers, args.secs)
        barrier = mp.Barrier(len(ps) + 1)
        start = mp.Value("d", 0.0)
        out = mp.Queue()
        procs = [mp.Process(target=publisher,
                            args=(i, port, p, args.secs, barrier, start, out))
                 for i, p in enumerate(ps)]
        for p in procs:
            p.start()
        start.value = time.monotonic() + 0.3
        barrier.wait(timeout=60)
        results = [out.get(timeout=args.secs + 60) for _ in procs]
        for p in procs:
            p.join()
    finally:
        stop(server)
    secs = args.secs
    per_sec = [[0, 0, 0] for _ in range(secs)]
    reconnects = 0
    for _, ps_, rc in results:
        reconnects += rc
        for s, row in ps_.items():
            s = min(s, secs - 1)  # an answer read just after the end counts in the last second
            for j in range(3):
                per_sec[s][j] += row[j]
    ok = sum(r[0] for r in per_sec)
    limited = sum(r[1] for r in per_sec)
    other = sum(r[2] for r in per_sec)
    return {
        "pattern": pattern,
        "admitted": ok,
        "limited": limited,
        "other": other,
        "reconnects": reconnects,
        "offered_per_s": (ok + limited + other) / secs,
        "achieved_per_s": ok / secs,
        "ratio": ok / secs / args.rate,
        "ratio_vs_bound": ok / (args.rate * secs + args.burst),
        "per_sec": per_sec,
        "max_sec": max(r[0] for r in per_sec),
        "min_sec": min(r[0] for r in per_sec),
        # Steady seconds: after the first (which spends the burst).
        "max_sec_after_1": max(r[0] for r in per_sec[1:]),
        "min_sec_after_1": min(r[0] for r in per_sec[1:]),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/release/sluicegate")
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--burst", type=float, default=200)
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--publishers", type=int, default=10)
    ap.add_argument("--patterns", default="abcd")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra server argument (repeat), e.g. --server-arg=--set ...")
    ap.add_argument("--json", help="write every run's counts here")
    ap.add_argument("--report", metavar="JSON",
                    help="print the table from a --json file of an earlier run; run nothing")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            saved = json.load(f)
        table(saved["runs"], argparse.Namespace(**saved["args"]))
        return
    allr = []
    for run_i in range(args.runs):
        for pattern in args.patterns:
            r = run(args.bin, pattern, args)
            r["run"] = run_i
            allr.append(r)
            warn = "" if r["limited"] else "  NO 429s: offered load below the limit!"
            print(f"run {run_i} pattern {pattern}: admitted {r['admitted']} 429 {r['limited']} "
                  f"other {r['other']} offered {r['offered_per_s']:.0f}/s achieved "
                  f"{r['achieved_per_s']:.0f}/s ratio {r['ratio']:.3f} per-second admitted "
                  f"{[x[0] for x in r['per_sec']]}{warn}", file=sys.stderr, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "runs": allr}, f, indent=1)
    table(allr, args)


def table(allr, args):
    """Print the Markdown table of medians over runs (worst seconds: over all runs)."""
    print(f"limit {args.rate:g}/s burst {args.burst:g}, {args.secs} s, {args.publishers} "
          f"publishers, median of {args.runs} runs (per-second extremes: over all runs)\n")
    print("| pattern | offered/s | admitted/s | achieved/configured | admitted/(burst+rate*t) "
          "| 429s/s | answers neither 200 nor 429 | highest second (admitted, first second "
          "incl.) | lowest..highest second after the first (admitted) |")
    print("|---|---|---|---|---|---|---|---|---|")
    names = {"a": "a: 90% shard 0 / 10% shard 1", "b": "b: all on shard 0",
             "c": "c: even", "d": "d: shard 0 for half, then shard 1"}
    for pattern in args.patterns:
        rs = [r for r in allr if r["pattern"] == pattern]
        med = lambda k: statistics.median(r[k] for r in rs)
        print(f"| {names[pattern]} | {med('offered_per_s'):.0f} | {med('achieved_per_s'):.0f} | "
              f"{med('ratio'):.3f} | {med('ratio_vs_bound'):.3f} | "
              f"{med('limited') / args.secs:.0f} | {sum(r['other'] for r in rs)} | "
              f"{max(r['max_sec'] for r in rs)} | "
              f"{min(r['min_sec_after_1'] for r in rs)}..{max(r['max_sec_after_1'] for r in rs)} |")

if __name__ == "__main__":
    main()
