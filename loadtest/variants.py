#!/usr/bin/env python3
"""Compare builds of Sluicegate against each other on the same fixed loads, interleaved.

Used to choose between designs (e.g. the fan-out writer task against writing inline in the
fan-out loop): each binary runs each scenario `--reps` times, the binaries taking turns so that
a slow spell of this shared machine hits all of them alike; the server is pinned to one CPU and
the load tool to the other, as in compare.py. Prints a Markdown table of medians, with the
server's SSE writes and session wake-ups per delivery read from its /metrics.

A variant can also be the same binary with extra server arguments: give it its own NAME with
`--bin` and add `--args NAME='ARGS'` (split like a shell would, appended to the server's command
line after the fixed ones), e.g. egress limits configured but never reached:

    --bin baseline=target/release/sluicegate --bin egress-limited=target/release/sluicegate \
    --args egress-limited='--set limits.egress_events={per_s=1e9,burst=1e9}
                           --set limits.egress_bytes={per_s=1e12,burst=1e12}'

Usage: loadtest/variants.py --bin NAME=PATH --bin NAME=PATH [--args NAME=ARGS ...]
       [--loadtest PATH] [--reps 3] [--scenario SUBSxRATE ...] [--secs 8]
"""
import argparse
import json
import shlex
import signal
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

SERVER_CPU = "0"
TOOL_CPU = "1"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def metrics(port, strip=""):
    """Sum each sluicegate_* sample over shards (labels dropped), names without `strip`."""
    out = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, value = line.rsplit(" ", 1)
            name = name.split("{", 1)[0].removeprefix(strip)
            out[name] = out.get(name, 0) + float(value)
    return out


def wait_healthy(port, proc, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server not healthy in {timeout} s")


def run_one(binary, loadtest, subs, rate, secs, extra=()):
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, binary, "--listen", f"127.0.0.1:{port}", "--shards", "1",
         "--set", "http.max_connections_per_shard=100000", "--set", "sse.heartbeat_ms=60000",
         "--set", "storage.mode=memory", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(port, server)
        cmd = ["taskset", "-c", TOOL_CPU, loadtest, "--server", "sluicegate",
               "--sub-addr", f"127.0.0.1:{port}", "--subscribers", str(subs),
               "--rate", str(rate), "--step-secs", str(secs), "--grace-secs", "2",
               "--settle-secs", "1", "--server-pid", str(server.pid), "--json", "-", "--quiet",
               "--connect-rate", "5000"]
        # Read the counters around the whole run: the connects add one write (the opening
        # comment) per subscriber, the same for every build.
        before = metrics(port)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 120)
        after = metrics(port)
        if out.returncode not in (0, 1):
            raise RuntimeError(f"loadtest failed: {out.stderr[-500:]}")
        report = json.loads(out.stdout)
        step = report["steps"][0]
        delivered = after.get("sluicegate_deliveries_total", 0) - before.get(
            "sluicegate_deliveries_total", 0)
        def per(name):
            if name not in after:
                return None  # an older build without this counter
            d = after[name] - before.get(name, 0)
            return d / delivered if delivered else None
        return {
            "p50": step["latency"]["p50_ms"],
            "p99": step["latency"]["p99_ms"],
            "max": step["latency"]["max_ms"],
            "lost": step["lost"],
            "dps": step["deliveries_per_s"],
            "per_core_s": step["deliveries_per_core_s"],
            "writes": per("sluicegate_sse_writes_total"),
            "wakes": per("sluicegate_sse_session_wakes_total"),
        }
    finally:
        stop(server)


def stop(server, sig=signal.SIGTERM, timeout=10):
    """Stop a server process with `sig` (SIGTERM: it drains), SIGKILL if it is not gone in
    `timeout` s; its exit status."""
    if server.poll() is not None:
        return server.returncode
    server.send_signal(sig)
    try:
        return server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        return server.wait()


def fmt(v, nd=2):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


# Helpers shared by the measurement scripts (durability.py, scaleout.py, redis_sink.py, ...).

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cpu_s(pid):
    """User + system CPU seconds of `pid` and its threads; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_busy():
    """Busy seconds of each CPU since boot (/proc/stat)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0].startswith("cpu") and parts[0] != "cpu":
                v = [int(x) for x in parts[1:]]
                # user, nice, system, irq, steal: not idle or iowait, and not softirq (the
                # loopback traffic of the measured load itself lands there, charged to no one)
                out[parts[0]] = (sum(v[:8]) - v[3] - v[4] - v[6]) / CLK_TCK
    return out


def wait_ready(port, proc, timeout=60.0):
    """Polls /readyz (200 once the instance knows every topic's partitions)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway on {port} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise RuntimeError(f"gateway on {port} not ready in {timeout} s: {last}")


def wait_listening(proc, port, name, see, timeout=30.0):
    """Waits until `proc` (a broker, Redis, ...) accepts connections on 127.0.0.1:`port`;
    `name` and `see` (where its output went) are for the errors."""
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {see}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise RuntimeError(f"{name} does not listen on {port}")
            time.sleep(0.1)


def gateway_cmd(binary, cfg, port, cpu):
    """A `--shards 1` gateway in memory mode with config `cfg`, pinned to `cpu`."""
    return ["taskset", "-c", cpu, os.path.abspath(binary), "--config", cfg,
            "--listen", f"127.0.0.1:{port}", "--shards", "1", "--cpus", cpu,
            "--set", "http.max_connections_per_shard=100000",
            "--set", "sse.heartbeat_ms=60000", "--set", "storage.mode=memory"]


def fanout_cmd(args, addrs, topic_prefix, pids):
    """`loadtest` SSE fan-out on one topic (PREFIX0) through the gateways at `addrs` (comma
    list), pinned to args.tool_cpu: args.subscribers x args.rate for args.step_secs."""
    cmd = ["taskset", "-c", args.tool_cpu, args.loadtest, "--server", "sluicegate",
           "--sub-addr", addrs, "--metrics-addr", addrs, "--subscribers",
           str(args.subscribers), "--rate", str(args.rate), "--topics", "1",
           "--topic-prefix", topic_prefix, "--step-secs", str(args.step_secs),
           "--grace-secs", str(args.grace_secs), "--settle-secs", "1",
           "--connect-rate", "5000", "--p99-limit-ms", str(args.p99_limit_ms),
           "--json", "-", "--quiet"]
    for pid in pids:
        cmd += ["--server-pid", str(pid)]
    return cmd


def stop_gateways(gws, ok, out):
    """Stops the gateways ({"proc", "log"}); after a good run removes the log of each that
    exited cleanly, after a failed one shows the load tool's stderr. Their exit codes."""
    codes = [stop(g["proc"]) for g in gws]
    for g, code in zip(gws, codes):
        if ok and code == 0 and os.path.exists(g["log"]):
            os.remove(g["log"])
    if out is not None and not ok:
        log(out.stderr[-2000:])
    return codes


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt_cell(v, nd=2):
    """A table cell: n/a, a whole number with separators from 1000 up, else `nd` decimals."""
    if v is None:
        return "n/a"
    if isinstance(v, (int, float)) and abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def git_commit(repo):
    return subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()


def raise_nofile():
    """The soft open-files limit up to the hard one."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def save_results(out_dir, text, summary=None):
    """Writes OUT/results.md (and OUT/summary.json when given), prints the text."""
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    if summary is not None:
        with open(os.path.join(out_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
    print(text)


def rerender(out_dir, report):
    """`--rerender`: results.md again from OUT/summary.json with `report(meta, runs)`."""
    with open(os.path.join(out_dir, "summary.json")) as f:
        s = json.load(f)
    save_results(out_dir, report(s["meta"], s["runs"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", action="append", required=True, help="NAME=PATH of a build")
    ap.add_argument("--loadtest", default="target/release/loadtest")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--secs", type=int, default=8)
    ap.add_argument("--scenario", action="append",
                    help="SUBSxRATE, e.g. 10000x5 (default: 10000x5, 5000x5, 1000x50, 100x1000)")
    ap.add_argument("--args", action="append", default=[],
                    help="NAME=ARGS: extra server arguments for the build NAME (shell-split)")
    args = ap.parse_args()
    bins = [b.split("=", 1) for b in args.bin]
    extra = {}
    for a in args.args:
        name, rest = a.split("=", 1)
        if name not in dict(bins):
            ap.error(f"--args names {name!r}, which no --bin defines")
        extra[name] = shlex.split(rest)
    scenarios = [tuple(int(x) for x in s.split("x"))
                 for s in (args.scenario or ["10000x5", "5000x5", "1000x50", "100x1000"])]
    results = {}
    for subs, rate in scenarios:
        for rep in range(args.reps):
            for name, path in bins:
                load = os.getloadavg()[0]
                r = run_one(path, args.loadtest, subs, rate, args.secs, extra.get(name, ()))
                r["load"] = load
                results.setdefault((subs, rate, name), []).append(r)
                print(f"{subs}x{rate} {name} rep {rep}: p50 {r['p50']} p99 {r['p99']} "
                      f"lost {r['lost']} per-core-s {r['per_core_s']:.0f} writes/d "
                      f"{fmt(r['writes'], 3)} wakes/d {fmt(r['wakes'], 3)} (load {load:.2f})",
                      file=sys.stderr, flush=True)
    print("| subscribers x events/s | build | p50 ms | p99 ms | max ms | lost | deliveries/s "
          "| deliveries per server core-second | SSE writes per delivery "
          "| session wake-ups per delivery |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for subs, rate in scenarios:
        for name, _ in bins:
            rs = results[(subs, rate, name)]
            med = lambda k: statistics.median(r[k] for r in rs if r[k] is not None) \
                if any(r[k] is not None for r in rs) else None
            print(f"| {subs} x {rate} | {name} | {fmt(med('p50'))} | {fmt(med('p99'))} | "
                  f"{fmt(med('max'))} | {fmt(med('lost'), 0)} | {fmt(med('dps'), 0)} | "
                  f"{fmt(med('per_core_s'), 0)} | {fmt(med('writes'), 3)} | "
                  f"{fmt(med('wakes'), 3)} |")


if __name__ == "__main__":
    main()
