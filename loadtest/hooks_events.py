#!/usr/bin/env python3
"""What a sync HTTP publish hook costs, and what system events cost, on one shard.

Two modes (`--mode hooks`, `--mode events`, default both), each a set of interleaved runs: per
repetition every variant runs once, the order rotating between repetitions, so a slow spell of
this shared machine hits every variant alike. Every run starts a fresh gateway (`--shards 1`,
`storage.mode=memory`, pinned to CPU 0 with taskset); every load tool (and the hook service,
and the system-event subscriber) is pinned to CPU 1. Tables report medians of the runs.

hooks: variants `no-hook` and `hook` (one `[[hooks.publish]]` with `timeout_ms = 1000` whose
URL is `loadtest webhook-sink --status 200`: every POST answered 200 with an empty body on a
kept-alive connection, which the gateway reads as "accept"). Three measurements, each on its
own fresh gateway (so the gateway's cumulative hook summary belongs to one measurement):
  open    open-loop publishing at --rate events/s for --secs s (`loadtest webhook-pub`, 8
          keep-alive connections, 100 B single-event publishes); latency from each publish's
          due time to its answer (coordinated-omission-free), gateway CPU from /proc.
  c64     closed loop, `loadtest publish --connections 64 --batch 1 --size 100`: publishes/s
          acknowledged and request latency (2 s warm-up, --secs s measured).
  c1      the same with one connection (one publish in flight: the serial round trip).
After each run the gateway's /metrics give `sluicegate_stage_seconds{stage="hook"}` (the hook
call alone, p50/p99 over the gateway's life, warm-up included) and `{stage="publish"}`, and
`sluicegate_hook_calls_total` / `_failures_total`; the sink reports the requests it answered
and the connections it accepted.

events: SSE fan-out as loadtest/variants.py measures it (the same gateway flags and loadtest
arguments: --subscribers N --rate R --step-secs --secs, grace 2 s, settle 1 s, connect rate
5000/s; one topic, 100 B events, one event per publish), scenarios SUBSxRATE (default 1000x50
and 100x1000), variants:
  before         the binary of a commit before system events existed (--before), no
                 system-event subscriber;
  after          this build, no system-event subscriber;
  after+sysub    this build with one SSE subscriber on `gateway.event.received` (anonymous is
                 admin on the open loopback gateway): `curl -sN` pinned to CPU 1, connected
                 before the load starts and reading until after it ends; the events it got are
                 counted from its output, with `sluicegate_system_events_total` and
                 `_dropped_total` from /metrics.
Reported per run: deliveries per server core-second and p50/p99/max latency from the load tool,
lost events, server CPU seconds of the step. A scenario `pubN` instead runs closed-loop
single-event publishes on N connections with no SSE subscriber (as hooks mode's c64): what a
system event costs per publish, without fan-out to dilute it.

Quiet machine: with --gate FILE every run waits until FILE exists (polled every 10 s) and a run
during which it disappeared is redone (at most 3 times); so is a run during which CPU 0 spent
more than --max-other (0.2) of its time on anything but the gateway (/proc/stat busy time less
the gateway's own CPU time). Each run records that fraction, CPU 1's busy fraction and the
1-minute load average before it (which counts this script's own previous run too).

Writes OUT/results.md, OUT/summary.json, OUT/raw/ (every tool's JSON, each run's /metrics
before and after, the start of the subscriber's stream, gateway logs of failed runs, machine
snapshots). `--rerender` rewrites results.md from summary.json.

Usage: loadtest/hooks_events.py --out DIR [--mode hooks|events|both]
       [--bin target/release/sluicegate] [--before /tmp/bins-s14/before]
       [--loadtest target/release/loadtest] [--reps 3] [--secs 10] [--rate 2000]
       [--scenario 1000x50 --scenario 100x1000] [--fanout-secs 8] [--gate /tmp/measure-go]
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durability import Gate  # noqa: E402
from variants import free_port, log, med, stop, wait_healthy  # noqa: E402

SERVER_CPU = "0"
TOOL_CPU = "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOOK_VARIANTS = ["no-hook", "hook"]
HOOK_MEASURES = ["open", "c64", "c1"]
EVENT_VARIANTS = ["before", "after", "after+sysub"]
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def scrape(port):
    """/metrics as {name{labels}: value}, the text as well."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line.strip())
        if m and not line.startswith("#"):
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out, text


def total(m, name):
    """A counter summed over shards; None when the build does not export it."""
    vals = [v for k, v in m.items() if k == name or k.startswith(name + "{")]
    return sum(vals) if vals else None


def stage_q(m, stage, q):
    """`sluicegate_stage_seconds{stage=...,quantile=q}` in ms."""
    v = m.get(f'sluicegate_stage_seconds{{stage="{stage}",quantile="{q}"}}')
    return None if v is None else v * 1000


def cpu_busy():
    """Busy seconds of each CPU since boot (/proc/stat: all but idle and iowait)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0].startswith("cpu") and parts[0] != "cpu":
                v = [int(x) for x in parts[1:]]
                out[parts[0]] = (sum(v[:8]) - v[3] - v[4]) / CLK_TCK
    return out


def other_load(busy0, busy1, wall, gateway_cpu_s):
    """CPU 0's busy fraction not spent by the gateway (other processes, interrupts), and CPU
    1's busy fraction, over a run: how disturbed it was."""
    d = {k: busy1[k] - busy0.get(k, 0) for k in busy1}
    return {"cpu0_other": (d.get("cpu" + SERVER_CPU, 0) - gateway_cpu_s) / wall,
            "cpu1_busy": d.get("cpu" + TOOL_CPU, 0) / wall}


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def start_gateway(binary, port, extra, logfile):
    cmd = ["taskset", "-c", SERVER_CPU, binary, "--listen", f"127.0.0.1:{port}", "--shards", "1",
           "--set", "http.max_connections_per_shard=100000", "--set", "sse.heartbeat_ms=60000",
           "--set", "storage.mode=memory", *extra]
    out = open(logfile, "ab")
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), cmd
    finally:
        out.close()


def save(raw, name, data):
    path = os.path.join(raw, name)
    with open(path, "w") as f:
        if isinstance(data, str):
            f.write(data)
        else:
            json.dump(data, f, indent=1)


def run_tool(cmd, timeout):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[3:5]} failed ({out.returncode}): {out.stderr[-800:]}")
    return out


# ---------------------------------------------------------------- hooks

def hook_run(args, variant, measure, tag):
    raw = os.path.join(args.out, "raw")
    port = free_port()
    logfile = os.path.join(raw, tag + ".gateway.log")
    extra, sink, sink_report = [], None, None
    if variant == "hook":
        sink_port = free_port()
        sink = subprocess.Popen(
            ["taskset", "-c", TOOL_CPU, args.loadtest, "webhook-sink", "--listen",
             f"127.0.0.1:{sink_port}", "--status", "200"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cfg = os.path.join(raw, tag + ".hook.toml")
        with open(cfg, "w") as f:
            f.write(f'[[hooks.publish]]\nurl = "http://127.0.0.1:{sink_port}/hook"\n'
                    'timeout_ms = 1000\n')
        extra = ["--config", cfg]
    server, cmd = start_gateway(args.bin, port, extra, logfile)
    ok = False
    try:
        wait_healthy(port, server)
        m0, t0 = scrape(port)
        c0 = cpu_s(server.pid)
        s0 = cpu_s(sink.pid) if sink is not None else None
        if measure == "open":
            lt = ["taskset", "-c", TOOL_CPU, args.loadtest, "webhook-pub", "--url",
                  f"127.0.0.1:{port}", "--topic", f"hk-{tag}", "--rate", str(args.rate),
                  "--size", "100", "--duration", str(args.secs), "--connections", "8"]
        else:
            conns = 64 if measure == "c64" else 1
            lt = ["taskset", "-c", TOOL_CPU, args.loadtest, "publish", "--url",
                  f"127.0.0.1:{port}", "--connections", str(conns), "--batch", "1", "--size",
                  "100", "--duration", str(args.secs), "--warmup", "2", "--topics", "1",
                  "--topic-prefix", f"hk-{tag}-", "--server-pid", str(server.pid),
                  "--json", "-"]
        wall0, b0 = time.time(), cpu_busy()
        rep = json.loads(run_tool(lt, args.secs + 120).stdout)
        wall = time.time() - wall0
        c1 = cpu_s(server.pid)
        disturbance = other_load(b0, cpu_busy(), wall, c1 - c0)
        sink_cpu = (cpu_s(sink.pid) - s0) / wall if sink is not None else None
        m1, t1 = scrape(port)
        save(raw, tag + ".metrics-before.txt", t0)
        save(raw, tag + ".metrics-after.txt", t1)
        save(raw, tag + ".tool.json", rep)
        ok = True
    finally:
        code = stop(server)
        if sink is not None:
            sink.send_signal(signal.SIGTERM)
            try:
                so, _ = sink.communicate(timeout=10)
                lines = [ln for ln in so.splitlines() if ln.startswith("{")]
                sink_report = json.loads(lines[-1]) if lines else None
            except subprocess.TimeoutExpired:
                sink.kill()
                sink.communicate()
            if sink_report:
                save(raw, tag + ".sink.json", sink_report)
        if ok and code == 0 and os.path.exists(logfile):
            os.remove(logfile)
    r = {"variant": variant, "measure": measure, "tag": tag, "server_exit": code,
         "gateway_cmd": cmd,
         "hook_calls": total(m1, "sluicegate_hook_calls_total"),
         "hook_failures": total(m1, "sluicegate_hook_failures_total"),
         "hook_rejections": total(m1, "sluicegate_hook_rejections_total"),
         "hook_p50_ms": stage_q(m1, "hook", "0.5"), "hook_p99_ms": stage_q(m1, "hook", "0.99"),
         "hook_p999_ms": stage_q(m1, "hook", "0.999"),
         "gw_publish_p50_ms": stage_q(m1, "publish", "0.5"),
         "gw_publish_p99_ms": stage_q(m1, "publish", "0.99"),
         "sink_requests": sink_report.get("total_requests") if sink_report else None,
         "sink_conns": sink_report.get("accepted") if sink_report else None,
         "sink_cpu": sink_cpu, **disturbance}
    if measure == "open":
        lat = rep["publish_latency_us"]
        ans = rep.get("answer_latency_us") or {}
        r.update({"answer_p50_ms": ans["p50"] / 1000 if ans else None,
                  "answer_p99_ms": ans["p99"] / 1000 if ans else None,
                  "answer_p999_ms": ans["p999"] / 1000 if ans else None,
                  "acked": rep["ok"], "scheduled": rep["scheduled"], "failed": rep["failed"],
                  "publishes_per_s": rep["ok"] / rep["elapsed_s"] if rep["elapsed_s"] else None,
                  "p50_ms": lat["p50"] / 1000, "p99_ms": lat["p99"] / 1000,
                  "p999_ms": lat["p999"] / 1000, "max_ms": lat["max"] / 1000,
                  "send_lag_p99_ms": rep["send_lag_us"]["p99"] / 1000,
                  "server_cpu": (c1 - c0) / wall,
                  "cpu_us_per_publish": (c1 - c0) / rep["ok"] * 1e6 if rep["ok"] else None})
    else:
        lat = rep["latency_us"]
        rps = rep["requests_per_s"]
        r.update({"acked": rep["requests_ok"], "failed": rep["non_2xx"] + rep["errors"],
                  "publishes_per_s": rps, "p50_ms": lat["p50"] / 1000,
                  "p99_ms": lat["p99"] / 1000, "p999_ms": lat["p999"] / 1000,
                  "max_ms": lat["max"] / 1000, "server_cpu": rep.get("server_cpu"),
                  "tool_cpu": rep.get("tool_cpu"),
                  "cpu_us_per_publish": rep["server_cpu"] / rps * 1e6
                  if rep.get("server_cpu") and rps else None})
    return r


# ---------------------------------------------------------------- system events

def count_sse(path, keep_lines=40):
    """Events in an SSE capture (one `data:` line each: the system events are one-line JSON),
    the first and last event's data. The capture is then cut to its first `keep_lines` lines
    (a closed-loop run's is hundreds of MB)."""
    n, first, last, head = 0, None, None, []
    with open(path, errors="replace") as f:
        for line in f:
            if len(head) < keep_lines:
                head.append(line)
            if line.startswith("data:"):
                n += 1
                last = line[5:].strip()
                first = first or last
    with open(path, "w") as f:
        f.write("".join(head) + f"\n: (cut by hooks_events.py: {n} events in all; the last "
                f"one's data: {last})\n")
    return n, first, last


def events_run(args, variant, subs, rate, tag):
    raw = os.path.join(args.out, "raw")
    binary = args.before if variant == "before" else args.bin
    port = free_port()
    logfile = os.path.join(raw, tag + ".gateway.log")
    server, cmd = start_gateway(binary, port, [], logfile)
    curl, capture, ok, closed = None, None, False, None
    try:
        wait_healthy(port, server)
        if variant == "after+sysub":
            capture = os.path.join(raw, tag + ".sysub.sse")
            curl = subprocess.Popen(
                ["taskset", "-c", TOOL_CPU, "curl", "-sN", "-o", capture,
                 f"http://127.0.0.1:{port}/topics/gateway.event.received/events"])
            deadline = time.time() + 10
            while True:
                if os.path.exists(capture) and ": ok" in open(capture, errors="replace").read():
                    break
                if time.time() > deadline or curl.poll() is not None:
                    raise RuntimeError("the system-event subscriber did not open")
                time.sleep(0.02)
        m0, t0 = scrape(port)
        c0 = cpu_s(server.pid)
        if subs == "pub":
            closed = closed_publish(args, server, port, m0, t0, c0, rate, tag, variant, cmd,
                                    capture)
            ok = True
            return closed
        lt = ["taskset", "-c", TOOL_CPU, args.loadtest, "--server", "sluicegate",
              "--sub-addr", f"127.0.0.1:{port}", "--subscribers", str(subs),
              "--rate", str(rate), "--step-secs", str(args.fanout_secs), "--grace-secs", "2",
              "--settle-secs", "1", "--server-pid", str(server.pid), "--json", "-", "--quiet",
              "--connect-rate", "5000"]
        wall0, b0 = time.time(), cpu_busy()
        out = subprocess.run(lt, capture_output=True, text=True, timeout=args.fanout_secs + 120)
        if out.returncode not in (0, 1):
            raise RuntimeError(f"loadtest failed: {out.stderr[-800:]}")
        rep = json.loads(out.stdout)
        time.sleep(0.5)  # the system-event queue's last events reach the subscriber
        c1 = cpu_s(server.pid)
        disturbance = other_load(b0, cpu_busy(), time.time() - wall0, c1 - c0)
        m1, t1 = scrape(port)
        save(raw, tag + ".metrics-before.txt", t0)
        save(raw, tag + ".metrics-after.txt", t1)
        save(raw, tag + ".tool.json", rep)
        ok = True
    finally:
        if curl is not None:
            curl.terminate()
            curl.wait(timeout=10)
        code = stop(server)
        if closed is not None:
            closed["server_exit"] = code
        if ok and code == 0 and os.path.exists(logfile):
            os.remove(logfile)
    step = rep["steps"][0]
    received, first, last = count_sse(capture) if capture else (None, None, None)
    d = lambda name: (None if total(m1, name) is None
                      else total(m1, name) - (total(m0, name) or 0))
    return {"variant": variant, "scenario": f"{subs}x{rate}", "tag": tag, "server_exit": code,
            "gateway_cmd": cmd,
            "p50_ms": step["latency"]["p50_ms"], "p99_ms": step["latency"]["p99_ms"],
            "max_ms": step["latency"]["max_ms"], "lost": step["lost"],
            "published": step["published"], "publish_errors": step["publish_errors"],
            "deliveries_per_s": step["deliveries_per_s"],
            "per_core_s": step["deliveries_per_core_s"], "server_cpu_s": step["server_cpu_s"],
            "server_cpu_run_s": c1 - c0, "connected": rep.get("connected"),
            "events_published_total": d("sluicegate_events_published_total"),
            "deliveries_total": d("sluicegate_deliveries_total"),
            "system_events_total": total(m1, "sluicegate_system_events_total"),
            "system_events_dropped_total": total(m1, "sluicegate_system_events_dropped_total"),
            "sysub_received": received, "sysub_first": first, "sysub_last": last,
            **disturbance}


def closed_publish(args, server, port, m0, t0, c0, conns, tag, variant, cmd, capture):
    """The `pubN` scenario of events mode: closed-loop single-event publishes on N connections
    (as hooks mode's c64), so the cost of system events per publish shows without fan-out."""
    raw = os.path.join(args.out, "raw")
    lt = ["taskset", "-c", TOOL_CPU, args.loadtest, "publish", "--url", f"127.0.0.1:{port}",
          "--connections", str(conns), "--batch", "1", "--size", "100", "--duration",
          str(args.secs), "--warmup", "2", "--topics", "1", "--topic-prefix",
          "ev-" + re.sub(r"[^A-Za-z0-9._-]", "-", tag) + "-",  # `+` is no topic character
          "--server-pid", str(server.pid), "--json", "-"]
    wall0, b0 = time.time(), cpu_busy()
    rep = json.loads(run_tool(lt, args.secs + 120).stdout)
    time.sleep(0.5)
    c1 = cpu_s(server.pid)
    disturbance = other_load(b0, cpu_busy(), time.time() - wall0, c1 - c0)
    m1, t1 = scrape(port)
    save(raw, tag + ".metrics-before.txt", t0)
    save(raw, tag + ".metrics-after.txt", t1)
    save(raw, tag + ".tool.json", rep)
    lat, rps = rep["latency_us"], rep["requests_per_s"]
    received, first, last = count_sse(capture) if capture else (None, None, None)
    d = lambda name: (None if total(m1, name) is None
                      else total(m1, name) - (total(m0, name) or 0))
    return {"variant": variant, "scenario": f"pub{conns}", "tag": tag, "gateway_cmd": cmd,
            "p50_ms": lat["p50"] / 1000, "p99_ms": lat["p99"] / 1000, "max_ms": lat["max"] / 1000,
            "lost": 0, "published": d("sluicegate_events_published_total"),
            "publish_errors": rep["non_2xx"] + rep["errors"], "deliveries_per_s": rps,
            "per_core_s": rps / rep["server_cpu"] if rep.get("server_cpu") else None,
            "server_cpu_s": (rep.get("server_cpu") or 0) * rep["duration_s"],
            "server_cpu": rep.get("server_cpu"), "server_cpu_run_s": c1 - c0, "connected": None,
            "events_published_total": d("sluicegate_events_published_total"),
            "deliveries_total": d("sluicegate_deliveries_total"),
            "system_events_total": total(m1, "sluicegate_system_events_total"),
            "system_events_dropped_total": total(m1, "sluicegate_system_events_dropped_total"),
            "sysub_received": received, "sysub_first": first, "sysub_last": last,
            **disturbance}


# ---------------------------------------------------------------- driver

def machine_snapshot(raw, name):
    try:
        top = subprocess.run(["top", "-bn1", "-w", "200"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        top = f"top: {e}"
    save(raw, name, f"loadavg {os.getloadavg()}\n\n" + "\n".join(top.splitlines()[:25]) + "\n")


def gated(args, fn, *a):
    """One run, redone (at most 3 times) when it was disturbed: the gate file vanished, or
    something other than the gateway took more than --max-other of CPU 0."""
    redone = []
    for attempt in range(4):
        with Gate(args.gate) as g:
            load = os.getloadavg()[0]
            r = fn(*a)
        r["load_before"] = load
        why = "the gate vanished" if g.disturbed else (
            f"CPU 0 {r['cpu0_other']:.2f} busy with others"
            if r.get("cpu0_other", 0) > args.max_other else None)
        if why is None:
            break
        redone.append(why)
        log(f"  disturbed ({why}), redo {attempt + 1}")
    r["disturbed"] = why is not None
    r["redone"] = redone
    return r


def rotated(items, rep):
    k = rep % len(items)
    return items[k:] + items[:k]


def fmt(v, nd=2, sign=False):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:+,.{nd}f}" if sign else f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def ratio(a, b):
    return a / b if a is not None and b else None


def hooks_report(args, runs):
    lines = ["## 1. A sync HTTP publish hook: cost per publish", "",
             f"One shard pinned to CPU 0, `storage.mode=memory`; the hook service "
             f"(`loadtest webhook-sink --status 200`, empty 200 = accept) and the load tools on "
             f"CPU 1. Variants `no-hook` / `hook` (`[[hooks.publish]]`, `timeout_ms = 1000`) "
             f"taking turns, a fresh gateway per measurement, medians of {args.reps} runs. "
             "100 B single-event publishes to one topic.", "",
             f"**(a) open loop, {args.rate:,.0f} publishes/s for {args.secs} s** (`loadtest "
             "webhook-pub`, 8 keep-alive connections). Round trip = a request's send to its "
             "answer; due to answer = from the time the schedule says it is due (a late send "
             "counts; the tool wakes with mio's millisecond poll timeout, so sends leave up to "
             "~1 ms late, the send lag, whatever the gateway does):", "",
             "| variant | round trip p50 ms | p99 ms | p99.9 ms | due to answer p50 ms | p99 ms "
             "| max ms | send lag p99 ms | acknowledged / scheduled "
             "| gateway CPU (cores) | gateway CPU us/publish | hook stage p50 ms | hook stage p99 "
             "ms | gateway publish stage p50 / p99 ms | hook conns |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    sel = lambda v, m: [r for r in runs if r["variant"] == v and r["measure"] == m]
    for v in HOOK_VARIANTS:
        rs = sel(v, "open")
        if not rs:
            continue
        lines.append(
            f"| {v} | {fmt(med(rs, 'answer_p50_ms'), 3)} | {fmt(med(rs, 'answer_p99_ms'), 3)} | "
            f"{fmt(med(rs, 'answer_p999_ms'), 3)} | {fmt(med(rs, 'p50_ms'), 3)} | "
            f"{fmt(med(rs, 'p99_ms'), 3)} | {fmt(med(rs, 'max_ms'), 2)} | "
            f"{fmt(med(rs, 'send_lag_p99_ms'), 3)} | "
            f"{fmt(med(rs, 'acked'), 0)} / {fmt(med(rs, 'scheduled'), 0)} | "
            f"{fmt(med(rs, 'server_cpu'), 3)} | {fmt(med(rs, 'cpu_us_per_publish'), 1)} | "
            f"{fmt(med(rs, 'hook_p50_ms'), 3)} | {fmt(med(rs, 'hook_p99_ms'), 3)} | "
            f"{fmt(med(rs, 'gw_publish_p50_ms'), 3)} / {fmt(med(rs, 'gw_publish_p99_ms'), 3)} | "
            f"{fmt(med(rs, 'sink_conns'), 0)} |")
    lines += ["", f"**(b) closed loop** (`loadtest publish --batch 1 --size 100`, 2 s warm-up, "
              f"{args.secs} s measured; c64 = 64 connections, c1 = 1 connection; each connection "
              "one publish in flight):", "",
              "| load | variant | publishes/s | p50 ms | p99 ms | p99.9 ms | gateway CPU (cores) "
              "| gateway CPU us/publish | hook stage p50 ms | hook stage p99 ms | hook conns "
              "| CPU 1: load tool + hook service (cores) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in ("c64", "c1"):
        for v in HOOK_VARIANTS:
            rs = sel(v, m)
            if not rs:
                continue
            lines.append(
                f"| {m} | {v} | {fmt(med(rs, 'publishes_per_s'), 0)} | "
                f"{fmt(med(rs, 'p50_ms'), 3)} | {fmt(med(rs, 'p99_ms'), 3)} | "
                f"{fmt(med(rs, 'p999_ms'), 3)} | {fmt(med(rs, 'server_cpu'), 3)} | "
                f"{fmt(med(rs, 'cpu_us_per_publish'), 1)} | {fmt(med(rs, 'hook_p50_ms'), 3)} | "
                f"{fmt(med(rs, 'hook_p99_ms'), 3)} | {fmt(med(rs, 'sink_conns'), 0)} | "
                f"{fmt(med(rs, 'tool_cpu'), 2)} + {fmt(med(rs, 'sink_cpu'), 2)} |")
    lines += ["", "Ratios (hook / no-hook, of the medians):", ""]
    ratios = {}
    for m in HOOK_MEASURES:
        a, b = sel("hook", m), sel("no-hook", m)
        if not a or not b:
            continue
        ratios[m] = {k: ratio(med(a, k), med(b, k))
                     for k in ("publishes_per_s", "p50_ms", "p99_ms", "cpu_us_per_publish")}
        if m == "open":
            ratios[m]["answer_p50_ms"] = ratio(med(a, "answer_p50_ms"), med(b, "answer_p50_ms"))
            ratios[m]["answer_p99_ms"] = ratio(med(a, "answer_p99_ms"), med(b, "answer_p99_ms"))
            ratios[m]["answer_p50_added_ms"] = med(a, "answer_p50_ms") - med(b, "answer_p50_ms")
            ratios[m]["answer_p99_added_ms"] = med(a, "answer_p99_ms") - med(b, "answer_p99_ms")
        ratios[m]["cpu_us_added"] = med(a, "cpu_us_per_publish") - med(b, "cpu_us_per_publish")
        ratios[m]["p50_added_ms"] = med(a, "p50_ms") - med(b, "p50_ms")
        ratios[m]["p99_added_ms"] = med(a, "p99_ms") - med(b, "p99_ms")
        x = ratios[m]
        trip = (f"round trip p50 x{fmt(x['answer_p50_ms'], 2)} "
                f"({fmt(x['answer_p50_added_ms'], 3, True)} ms), p99 "
                f"x{fmt(x['answer_p99_ms'], 2)} ({fmt(x['answer_p99_added_ms'], 3, True)} ms); "
                "due to answer " if m == "open" else "")
        lines.append(f"- {m}: publishes/s x{fmt(x['publishes_per_s'], 3)}; {trip}p50 "
                     f"x{fmt(x['p50_ms'], 2)} ({fmt(x['p50_added_ms'], 3, True)} ms), p99 "
                     f"x{fmt(x['p99_ms'], 2)} ({fmt(x['p99_added_ms'], 3, True)} ms); gateway "
                     f"CPU per publish x{fmt(x['cpu_us_per_publish'], 2)} "
                     f"({fmt(x['cpu_us_added'], 1, True)} us)")
    lines += ["", "Every run:", "",
              "| measure | variant | tag | load avg before | CPU 0 not the gateway | CPU 1 busy "
              "| publishes/s | p50 ms | p99 ms | failed | hook calls | hook failures | hook p50 / "
              "p99 ms | sink requests | exit |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(
            f"| {r['measure']} | {r['variant']} | {r['tag']} | {fmt(r.get('load_before'))} | "
            f"{fmt(r.get('cpu0_other'))} | {fmt(r.get('cpu1_busy'))} | "
            f"{fmt(r['publishes_per_s'], 0)} | {fmt(r['p50_ms'], 3)} | {fmt(r['p99_ms'], 3)} | "
            f"{fmt(r['failed'])} | {fmt(r['hook_calls'], 0)} | {fmt(r['hook_failures'], 0)} | "
            f"{fmt(r['hook_p50_ms'], 3)} / {fmt(r['hook_p99_ms'], 3)} | "
            f"{fmt(r['sink_requests'])} | {r['server_exit']} |")
    return lines, ratios


def events_report(args, runs, scenarios):
    before_label = getattr(args, "before_label", None) or \
        "the binary of commit 4c5a665 (before system events)"
    after_label = getattr(args, "after_label", None) or "this build"
    lines = ["## 2. SSE fan-out with no system-event subscriber vs one", "",
             "One shard pinned to CPU 0, `storage.mode=memory`, the flags of loadtest/variants.py; "
             f"the load tool on CPU 1 (one topic, 100 B events, {args.fanout_secs} s step, 2 s "
             f"grace). `before` = {before_label}, `after` = "
             f"{after_label}, `after+sysub` = {after_label} with one `curl -sN` (CPU 1) reading "
             f"`/topics/gateway.event.received/events` throughout. Medians of {args.reps} runs, "
             "the three variants taking turns. Deliveries per core-second = deliveries the load "
             "tool received / the server's CPU seconds over the step (the system subscriber's "
             "deliveries are cost, not counted as deliveries).", "",
             "| subscribers x events/s | variant | p50 ms | p99 ms | max ms | lost | deliveries/s "
             "| deliveries per server core-second | server CPU s (step) | system events "
             "published | dropped | received by the system subscriber | publishes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    ratios = {}
    for subs, rate in scenarios:
        sc = f"pub{rate}" if subs == "pub" else f"{subs}x{rate}"
        label = (f"closed-loop publish, {rate} conns" if subs == "pub"
                 else f"{subs} x {rate}")
        for v in EVENT_VARIANTS:
            rs = [r for r in runs if r["scenario"] == sc and r["variant"] == v]
            if not rs:
                continue
            lines.append(
                f"| {label} | {v} | {fmt(med(rs, 'p50_ms'))} | {fmt(med(rs, 'p99_ms'))} | "
                f"{fmt(med(rs, 'max_ms'))} | {fmt(med(rs, 'lost'), 0)} | "
                f"{fmt(med(rs, 'deliveries_per_s'), 0)} | {fmt(med(rs, 'per_core_s'), 0)} | "
                f"{fmt(med(rs, 'server_cpu_s'), 2)} | {fmt(med(rs, 'system_events_total'), 0)} | "
                f"{fmt(med(rs, 'system_events_dropped_total'), 0)} | "
                f"{fmt(med(rs, 'sysub_received'), 0)} | {fmt(med(rs, 'published'), 0)} |")
        g = lambda v, k: med([r for r in runs if r["scenario"] == sc and r["variant"] == v], k)
        ratios[sc] = {
            "sysub_vs_nosub_per_core": ratio(g("after+sysub", "per_core_s"),
                                             g("after", "per_core_s")),
            "sysub_vs_nosub_p99": ratio(g("after+sysub", "p99_ms"), g("after", "p99_ms")),
            "after_vs_before_per_core": ratio(g("after", "per_core_s"),
                                              g("before", "per_core_s")),
            "after_vs_before_p99": ratio(g("after", "p99_ms"), g("before", "p99_ms")),
        }
    if any(subs == "pub" for subs, _ in scenarios):
        lines += ["", "In the closed-loop publish rows (no SSE subscribers, `loadtest publish "
                  "--batch 1 --size 100`, 2 s warm-up then the measured window), latency is "
                  "the publish request's, deliveries/s are publishes/s acknowledged, per core-"
                  "second are publishes per server core-second, and publishes is "
                  "`sluicegate_events_published_total`'s increase over the whole run (warm-up "
                  "included; it counts the system events too)."]
    lines += ["", "Ratios (of the medians):", ""]
    for sc, x in ratios.items():
        lines.append(f"- {sc}: one system subscriber / none: deliveries per core-second "
                     f"x{fmt(x['sysub_vs_nosub_per_core'], 3)}, p99 "
                     f"x{fmt(x['sysub_vs_nosub_p99'], 2)}; `after` without a system "
                     f"subscriber / `before`: deliveries per core-second "
                     f"x{fmt(x['after_vs_before_per_core'], 3)}, p99 "
                     f"x{fmt(x['after_vs_before_p99'], 2)}")
    lines += ["", "Every run:", "",
              "| scenario | variant | tag | load avg before | CPU 0 not the gateway | CPU 1 busy "
              "| p50 ms | p99 ms | max ms | lost | "
              "per core-s | server CPU s | events_published_total (delta) | system events "
              "published / dropped / received | publishes | exit |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(
            f"| {r['scenario']} | {r['variant']} | {r['tag']} | {fmt(r.get('load_before'))} | "
            f"{fmt(r.get('cpu0_other'))} | {fmt(r.get('cpu1_busy'))} | "
            f"{fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {fmt(r['max_ms'])} | {r['lost']} | "
            f"{fmt(r['per_core_s'], 0)} | {fmt(r['server_cpu_s'])} | "
            f"{fmt(r['events_published_total'], 0)} | {fmt(r['system_events_total'], 0)} / "
            f"{fmt(r['system_events_dropped_total'], 0)} / {fmt(r['sysub_received'])} | "
            f"{r['published']} | {r.get('server_exit')} |")
    return lines, ratios


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", choices=["hooks", "events", "both"], default="both")
    ap.add_argument("--bin", default="target/release/sluicegate")
    ap.add_argument("--before", default="/tmp/bins-s14/before",
                    help="the gateway binary before system events (commit 4c5a665)")
    ap.add_argument("--loadtest", default="target/release/loadtest")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--secs", type=float, default=10, help="hooks: seconds measured per run")
    ap.add_argument("--rate", type=float, default=2000, help="hooks: open-loop publishes/s")
    ap.add_argument("--measures", default="open,c64,c1", help="hooks: which measurements")
    ap.add_argument("--scenario", action="append", help="events: SUBSxRATE "
                    "(default 1000x50 and 100x1000), or pubN: closed-loop single-event "
                    "publishes on N connections, no subscribers (--secs measured)")
    ap.add_argument("--fanout-secs", type=int, default=8, help="events: seconds of publishing")
    ap.add_argument("--before-label", help="events: what --before is, for the report")
    ap.add_argument("--after-label", help="events: what --bin is, for the report")
    ap.add_argument("--events-variants", default=",".join(EVENT_VARIANTS),
                    help="events: which variants run (e.g. before,after to compare two builds "
                    "given as --before and --bin)")
    ap.add_argument("--gate", help="wait for this file before each run (quiet machine)")
    ap.add_argument("--max-other", type=float, default=0.2,
                    help="redo a run during which CPU 0 was busier than this with anything but "
                    "the gateway (fraction; /proc/stat, tick-granular, so +-0.1 is noise)")
    ap.add_argument("--rerender", action="store_true",
                    help="rewrite OUT/results.md (and the ratios in OUT/summary.json) from "
                    "OUT/summary.json, running nothing")
    args = ap.parse_args()
    if args.rerender:
        with open(os.path.join(args.out, "summary.json")) as f:
            summary = json.load(f)
        ran = argparse.Namespace(**summary["args"])
        ran.out = args.out
        render(ran, summary)
        return
    for p in ("bin", "loadtest") + (("before",) if args.mode != "hooks" else ()):
        if not os.access(getattr(args, p), os.X_OK):
            ap.error(f"--{p} {getattr(args, p)}: not an executable")
    args.bin, args.loadtest = os.path.abspath(args.bin), os.path.abspath(args.loadtest)
    args.before = os.path.abspath(args.before)
    raw = os.path.join(args.out, "raw")
    os.makedirs(raw, exist_ok=True)
    measures = [m for m in args.measures.split(",") if m]
    summary = {"args": vars(args), "argv": sys.argv[1:],
               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadavg_start": os.getloadavg()}
    machine_snapshot(raw, "machine-start.txt")
    hook_runs, event_runs = [], []
    t_start = time.time()
    if args.mode in ("hooks", "both"):
        for rep in range(args.reps):
            for m in measures:
                for v in rotated(HOOK_VARIANTS, rep):
                    tag = f"hooks-{m}-{v}-r{rep}"
                    r = gated(args, hook_run, args, v, m, tag)
                    hook_runs.append(r)
                    log(f"{tag}: {r['publishes_per_s']:.0f}/s p50 {r['p50_ms']:.3f} p99 "
                        f"{r['p99_ms']:.3f} ms, hook p50/p99 {fmt(r['hook_p50_ms'], 3)}/"
                        f"{fmt(r['hook_p99_ms'], 3)} ms, failed {r['failed']} "
                        f"(load {r['load_before']:.2f})")
    if args.mode in ("events", "both"):
        for subs, rate in parse_scenarios(args):
            for rep in range(args.reps):
                for v in rotated(args.events_variants.split(","), rep):
                    tag = f"events-{subs}{'' if subs == 'pub' else 'x'}{rate}-{v}-r{rep}"
                    r = gated(args, events_run, args, v, subs, rate, tag)
                    event_runs.append(r)
                    log(f"{tag}: per-core-s {r['per_core_s']:.0f} p99 {r['p99_ms']} lost "
                        f"{r['lost']} sys {fmt(r['system_events_total'], 0)}/"
                        f"{fmt(r['system_events_dropped_total'], 0)}/"
                        f"{fmt(r['sysub_received'])} (load {r['load_before']:.2f})")
    machine_snapshot(raw, "machine-end.txt")
    summary.update({"elapsed_s": time.time() - t_start, "cpus": os.cpu_count(),
                    "hook_runs": hook_runs, "event_runs": event_runs})
    print(render(args, summary))


def parse_scenarios(args):
    return [("pub", int(s[3:])) if s.startswith("pub") else tuple(int(x) for x in s.split("x"))
            for s in (args.scenario or ["1000x50", "100x1000"])]


def render(args, summary):
    """Writes OUT/results.md and OUT/summary.json from the runs in `summary`."""
    hook_runs, event_runs = summary["hook_runs"], summary["event_runs"]
    runs = hook_runs + event_runs
    loads = [r["load_before"] for r in runs]
    argv = summary.get("argv")
    elapsed = summary.get("elapsed_s")
    md = ["# A sync publish hook and system events: what they cost", "",
          "Generated by `loadtest/hooks_events.py`"
          + (f" ({' '.join(argv)})" if argv else "") + f" on {summary['started']}"
          + (f", {elapsed:.0f} s" if elapsed else "") + f". Gateway `{args.bin}`, load tool "
          f"`{args.loadtest}`" + (f", before `{args.before}`" if event_runs else "") + ". "
          f"Machine: {summary.get('cpus', 2)} CPUs, shared; 1-minute load average before the "
          f"runs: min {min(loads):.2f}, median {statistics.median(loads):.2f}, max "
          f"{max(loads):.2f}"
          + (f"; quiet-machine gate {args.gate}" if args.gate else "; no quiet-machine gate")
          + " (raw/machine-*.txt: top at the start and the end). The load average includes "
          "this script's own previous run (gateway + load tool: ~1.5 to 2); the per-run tables' "
          "`CPU 0 not the gateway` (other processes on the gateway's CPU, +-0.1 tick noise) and "
          "`CPU 1 busy` say how disturbed each run was. Runs redone as disturbed: "
          f"{sum(len(r.get('redone', [])) for r in runs)}; kept although still disturbed: "
          f"{sum(1 for r in runs if r.get('disturbed'))}.", ""]
    if hook_runs:
        lines, summary["hook_ratios"] = hooks_report(args, hook_runs)
        md += lines + [""]
    if event_runs:
        lines, summary["event_ratios"] = events_report(args, event_runs, parse_scenarios(args))
        md += lines + [""]
    save(args.out, "results.md", "\n".join(md))
    save(args.out, "summary.json", summary)
    return "\n".join(md)


if __name__ == "__main__":
    main()
