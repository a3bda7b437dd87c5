#!/usr/bin/env python3
"""What the Redis Streams sink costs and how fast it mirrors (issue #13, "Tests and figures").

Two parts, each with two variants taking turns per repetition (rotating order, so a slow spell
of this shared machine hits both alike), medians of --reps:
  off    no `[redis]` at all;
  sink   `[redis] url = ..., mode = "sink", sink_topics = [<the run's topic>]` (every other
         sink setting at its default: sink_batch 512, sink_queue_events 100000, overflow block).

fanout      SSE fan-out at the standard quick load: `loadtest --subscribers 1000 --rate 50`
            (one topic, 100 B events, open loop, 10 s; latency is from each event's scheduled
            publish time to its receipt). Reported: deliveries/s, publish-to-receipt p50/p99,
            gateway CPU over the step, events mirrored/s (from
            sluicegate_redis_sink_mirrored_total) and entries in the stream at the end (XLEN),
            the sink lag at the end (sluicegate_redis_sink_lag) and its highest sample, and the
            ratio sink / off.
saturation  the sink alone under a closed-loop publish load: `loadtest publish --connections 64
            --batch 10 --size 100` (64 keep-alive connections, one 10-event NDJSON request in
            flight each, no subscribers; --warmup 2 s then --duration 10 s measured), as
            loadtest/durability.py drives it. Reported: publish events/s accepted (2xx) and
            refused (503: the sink's bound reached, overflow = block), events mirrored/s over
            the measured window (/metrics sampled every --sample-secs while it runs), the
            highest lag, the lag when the load stops and how long the sink then takes to drain
            it, and the CPU of the gateway and Redis. When the sink keeps up, mirrored/s is the
            publish rate; when it does not, the queue fills to its bound, publishes get 503 and
            mirrored/s is the sink's own ceiling on this machine.

Placement: the gateway (`--shards 1`, memory mode) on --gateway-cpu (0); its sink plane thread
is pinned beside its shard, so the sink's CPU is the gateway's. `loadtest` on --tool-cpu (1), and
a redis-server of this script's own (no persistence, a free port) on --redis-cpu (1, beside the
load tool: the machine has two). A fresh gateway and a fresh topic per run; Redis is flushed
between runs.

Quiet machine: with --gate FILE every run waits until FILE exists and a run during which it
vanished is redone (at most 3 times); so is a run during which the gateway's CPU spent more than
--max-other (0.2) of its time on anything but the gateway (/proc/stat busy time less softirq,
where the load's own loopback traffic lands, less the gateway's CPU time). Each run records that
fraction and the 1-minute load average before it.

Writes OUT/results.md, OUT/summary.json, OUT/raw/ (every loadtest JSON, the /metrics samples,
gateway logs of failed runs). OUT defaults to loadtest/results/<date>-redis-sink.
`--rerender` rewrites results.md from summary.json.

Usage: loadtest/redis_sink.py [--out DIR] [--bin target/release/sluicegate]
       [--loadtest target/release/loadtest] [--reps 3] [--parts fanout,saturation]
       [--variants off,sink] [--subscribers 1000] [--rate 50] [--step-secs 10]
       [--connections 64] [--batch 10] [--duration 10] [--warmup 2] [--gateway-cpu 0]
       [--tool-cpu 1] [--redis-cpu 1] [--gate /tmp/measure-go] [--max-other 0.2]
"""
import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durability import Gate  # noqa: E402
from variants import (CLK_TCK, cpu_busy, cpu_s, fanout_cmd, free_port, gateway_cmd,  # noqa: E402
                      git_commit, log, med, metrics, raise_nofile, rerender, save_results,
                      stop, stop_gateways, wait_listening, wait_ready)
from variants import fmt_cell as fmt  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SINK_COUNTERS = ("redis_sink_mirrored_total", "redis_sink_retries_total",
                 "redis_sink_dropped_total", "events_published_total", "deliveries_total")


def start_redis(args):
    """redis-server without persistence on a free port, pinned to --redis-cpu."""
    port = free_port()
    work = os.path.join(args.work, "redis")
    os.makedirs(work, exist_ok=True)
    cmd = ["taskset", "-c", args.redis_cpu, "redis-server", "--bind", "127.0.0.1",
           "--port", str(port), "--save", "", "--appendonly", "no"]
    with open(os.path.join(work, "redis.log"), "ab") as out:
        proc = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT)
    wait_listening(proc, port, "redis-server", work)
    args.redis_port = port
    return proc


def redis_cli(args, *cmd):
    out = subprocess.run(["redis-cli", "-p", str(args.redis_port), *cmd], capture_output=True,
                         text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"redis-cli {' '.join(cmd)}: {out.stderr.strip()}")
    return out.stdout.strip()


def stream_entries(args, topic):
    """XLEN summed over the topic's streams (the default key template)."""
    keys = redis_cli(args, "--scan", "--pattern", f"sluicegate:{topic}:*").split()
    return sum(int(redis_cli(args, "XLEN", k)) for k in keys), len(keys)


def start_gateway(args, variant, topic, tag):
    """A fresh `--shards 1` gateway in memory mode pinned to --gateway-cpu; the sink variant
    with a `[redis]` section mirroring `topic`."""
    work = os.path.join(args.work, tag)
    os.makedirs(work, exist_ok=True)
    cfg = os.path.join(work, "gateway.toml")
    with open(cfg, "w") as f:
        if variant.startswith("sink"):
            f.write(f"[redis]\nurl = \"redis://127.0.0.1:{args.redis_port}\"\n"
                    f"mode = \"sink\"\nsink_topics = [{json.dumps(topic)}]\n")
    port = free_port()
    binary = args.sink_bins.get(variant, args.bin)
    cmd = gateway_cmd(binary, cfg, port, args.gateway_cpu)
    logfile = os.path.join(args.out, "raw", f"{tag}.gateway.log")
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(port, proc)
    except Exception:
        stop(proc)
        raise
    return {"proc": proc, "port": port, "cmd": cmd, "log": logfile}


class Sampler:
    """Reads the gateway's /metrics every `every` s while the load runs: (t, counters)."""

    def __init__(self, port, every):
        self.port, self.every = port, every
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while True:
            try:
                m = metrics(self.port, strip="sluicegate_")
                self.samples.append((time.time(), {k: m.get(k, 0) for k in
                                                   (*SINK_COUNTERS, "redis_sink_lag")}))
            except OSError:
                pass
            if self._stop.wait(self.every):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False

    def rate(self, key, t0, t1):
        """The counter's rate between the samples nearest t0 and t1."""
        inside = [s for s in self.samples if t0 - self.every / 2 <= s[0] <= t1 + self.every / 2]
        if len(inside) < 2:
            return None
        a, b = inside[0], inside[-1]
        return (b[1][key] - a[1][key]) / (b[0] - a[0]) if b[0] > a[0] else None

    def highest(self, key):
        return max((s[1][key] for s in self.samples), default=None)


def thread_cpu_s(pid, name):
    """User + system CPU seconds of `pid`'s threads called `name` (the sink plane's thread is
    `redis-sink-<shard>`); None when there is none."""
    total, found = 0.0, False
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                text = f.read()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        if comm.startswith(name):
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
            found = True
    return total if found else None


def other_on_gateway_cpu(args, busy0, busy1, gw_cpu_s, wall):
    """How busy the gateway's CPU was with anything but the gateway (another process on this
    shared machine); a disturbed run is redone."""
    busy = busy1.get("cpu" + args.gateway_cpu, 0) - busy0.get("cpu" + args.gateway_cpu, 0)
    return max(busy - gw_cpu_s, 0) / wall


def drain(port, timeout):
    """After the load: seconds until the sink lag reads 0 (None when it never does), and the
    lag first read."""
    t0 = time.time()
    first = None
    while time.time() - t0 < timeout:
        lag = metrics(port, strip="sluicegate_").get("redis_sink_lag", 0)
        if first is None:
            first = lag
        if lag == 0:
            return time.time() - t0, first
        time.sleep(0.1)
    return None, first


def run_fanout(args, variant, tag):
    prefix = f"lt-sink-{tag}-"
    topic = prefix + "0"
    gw = start_gateway(args, variant, topic, tag)
    ok, rep, out = False, None, None
    try:
        m0 = metrics(gw["port"], strip="sluicegate_")
        g0, r0 = cpu_s(gw["proc"].pid), cpu_s(args.redis_proc.pid)
        lt = fanout_cmd(args, f"127.0.0.1:{gw['port']}", prefix, [gw["proc"].pid])
        wall0, busy0 = time.time(), cpu_busy()
        with Sampler(gw["port"], args.sample_secs) as sampler:
            out = subprocess.run(lt, capture_output=True, text=True,
                                 timeout=args.step_secs + args.grace_secs + 180)
        wall, busy1 = time.time() - wall0, cpu_busy()
        if out.returncode not in (0, 1):
            raise RuntimeError(f"loadtest failed ({out.returncode}): {out.stderr[-800:]}")
        rep = json.loads(out.stdout)
        g1, r1 = cpu_s(gw["proc"].pid), cpu_s(args.redis_proc.pid)
        lag_end = metrics(gw["port"], strip="sluicegate_").get("redis_sink_lag")
        if variant != "off":
            # The gateway copies the sink's counters every 0.5 s: wait for an empty queue and
            # one more copy before the final read.
            drain(gw["port"], args.drain_timeout)
            time.sleep(0.6)
        m1 = metrics(gw["port"], strip="sluicegate_")
        xlen, streams = stream_entries(args, topic) if variant != "off" else (None, 0)
        with open(os.path.join(args.out, "raw", tag + ".loadtest.json"), "w") as f:
            json.dump({"loadtest": rep, "samples": sampler.samples}, f, indent=1)
        ok = True
    finally:
        code, = stop_gateways([gw], ok, out)
    step = rep["steps"][0]
    lat = step["latency"]
    delta = {k: m1.get(k, 0) - m0.get(k, 0) for k in SINK_COUNTERS}
    # The load's publishing window: from the loadtest's start plus connecting and settling is
    # not known here, so the mirrored rate is over the step's length (every event published in
    # it, 500 at 50/s, is mirrored by the end of the run).
    return {
        "part": "fanout", "variant": variant, "tag": tag, "topic": topic,
        "gateway_cmd": gw["cmd"], "server_exit": code, "connected": rep["connected"],
        "deliveries_per_s": step["deliveries_per_s"], "p50_ms": lat["p50_ms"],
        "p99_ms": lat["p99_ms"], "max_ms": lat["max_ms"], "published": step["published"],
        "publish_errors": step["publish_errors"], "lost": step["lost"],
        "duplicates": step["duplicates"], "gateway_cpu_s": step["server_cpu_s"],
        "deliveries_per_gateway_core_s": step["deliveries_per_core_s"],
        "gateway_cpu_run_s": g1 - g0, "redis_cpu_run_s": r1 - r0, "run_wall_s": wall,
        "mirrored": delta["redis_sink_mirrored_total"],
        "mirrored_per_s": delta["redis_sink_mirrored_total"] / args.step_secs,
        "sink_retries": delta["redis_sink_retries_total"],
        "sink_dropped": delta["redis_sink_dropped_total"],
        "sink_lag_end": lag_end if variant != "off" else None,
        "sink_lag_max": sampler.highest("redis_sink_lag") if variant != "off" else None,
        "stream_entries": xlen, "streams": streams,
        "gateway_cpu_other": other_on_gateway_cpu(args, busy0, busy1, g1 - g0, wall),
        "tool_cpu_util": step["tool_cpu_util"],
    }


def run_saturation(args, variant, tag):
    prefix = f"lt-sink-{tag}-"
    topic = prefix + "0"
    gw = start_gateway(args, variant, topic, tag)
    ok, rep, out = False, None, None
    try:
        m0 = metrics(gw["port"], strip="sluicegate_")
        g0, r0 = cpu_s(gw["proc"].pid), cpu_s(args.redis_proc.pid)
        lt = ["taskset", "-c", args.tool_cpu, args.loadtest, "publish", "--url",
              f"127.0.0.1:{gw['port']}", "--connections", str(args.connections),
              "--batch", str(args.batch), "--size", str(args.size),
              "--duration", str(args.duration), "--warmup", str(args.warmup),
              "--topics", "1", "--topic-prefix", prefix, "--server-pid", str(gw["proc"].pid),
              "--json", "-"]
        wall0, busy0 = time.time(), cpu_busy()
        s0 = thread_cpu_s(gw["proc"].pid, "redis-sink")
        with Sampler(gw["port"], args.sample_secs) as sampler:
            out = subprocess.run(lt, capture_output=True, text=True,
                                 timeout=args.duration + args.warmup + 120)
            t_end = time.time()
        wall, busy1 = t_end - wall0, cpu_busy()
        g1, r1 = cpu_s(gw["proc"].pid), cpu_s(args.redis_proc.pid)
        s1 = thread_cpu_s(gw["proc"].pid, "redis-sink")
        if out.returncode != 0:
            raise RuntimeError(f"loadtest failed ({out.returncode}): {out.stderr[-800:]}")
        rep = json.loads(out.stdout)
        # The measured window: the last --duration seconds before the tool exited.
        t1 = t_end
        t0 = t1 - args.duration
        m_load = metrics(gw["port"], strip="sluicegate_")
        if variant != "off":
            drain_s, lag_at_stop = drain(gw["port"], args.drain_timeout)
            time.sleep(0.6)  # one more copy of the sink's counters into /metrics
        else:
            drain_s, lag_at_stop = None, None
        s2 = thread_cpu_s(gw["proc"].pid, "redis-sink")
        m1 = metrics(gw["port"], strip="sluicegate_")
        g2 = cpu_s(gw["proc"].pid)
        with open(os.path.join(args.out, "raw", tag + ".publish.json"), "w") as f:
            json.dump({"loadtest": rep, "samples": sampler.samples}, f, indent=1)
        ok = True
    finally:
        code, = stop_gateways([gw], ok, out)
    delta = {k: m1.get(k, 0) - m0.get(k, 0) for k in SINK_COUNTERS}
    published_load = m_load.get("events_published_total", 0) - m0.get("events_published_total", 0)
    mirrored_load = (m_load.get("redis_sink_mirrored_total", 0)
                     - m0.get("redis_sink_mirrored_total", 0))
    return {
        "part": "saturation", "variant": variant, "tag": tag, "topic": topic,
        "gateway_cmd": gw["cmd"], "server_exit": code,
        "events_per_s": rep["events_per_s"], "requests_per_s": rep["requests_per_s"],
        "non_2xx": rep["non_2xx"], "non_2xx_per_s": rep["non_2xx"] / rep["duration_s"],
        "errors": rep["errors"], "p50_ms": rep["latency_us"]["p50"] / 1000,
        "p99_ms": rep["latency_us"]["p99"] / 1000, "gateway_cpu": rep.get("server_cpu"),
        "tool_cpu": rep.get("tool_cpu"),
        "mirrored_per_s": sampler.rate("redis_sink_mirrored_total", t0, t1)
        if variant != "off" else None,
        "published_per_s_sampled": sampler.rate("events_published_total", t0, t1),
        "published_during_load": published_load, "mirrored_during_load": mirrored_load,
        "mirrored_total": delta["redis_sink_mirrored_total"],
        "published_total": delta["events_published_total"],
        "sink_retries": delta["redis_sink_retries_total"],
        "sink_dropped": delta["redis_sink_dropped_total"],
        "sink_lag_max": sampler.highest("redis_sink_lag") if variant != "off" else None,
        "sink_lag_at_stop": lag_at_stop, "drain_s": drain_s,
        "drain_per_s": lag_at_stop / drain_s if lag_at_stop and drain_s else None,
        "gateway_cpu_run_s": g1 - g0, "gateway_cpu_drain_s": g2 - g1,
        "sink_thread_cpu_s": (s1 - s0) if s0 is not None and s1 is not None else None,
        # Over the load and the drain after it, against every entry mirrored by then.
        "sink_thread_us_per_entry": (s2 - s0) / delta["redis_sink_mirrored_total"] * 1e6
        if s0 is not None and s2 is not None and delta["redis_sink_mirrored_total"] else None,
        "redis_cpu_per_s": (r1 - r0) / wall, "run_wall_s": wall,
        "gateway_cpu_other": other_on_gateway_cpu(args, busy0, busy1, g1 - g0, wall),
    }


def ratio(a, b, nd=3):
    return f"{a / b:.{nd}f}" if a is not None and b else "n/a"


def median_table(by, variants, rows, ratio_keys):
    """The table of medians per variant, with the ratio of each later variant to the first on
    the rows whose key is in `ratio_keys`; a row whose key is a pair shows "median / median"."""
    lines = ["| | " + " | ".join(variants) + "".join(
                 f" | {v} / {variants[0]}" for v in variants[1:]) + " |",
             "|---|" + "---|" * (2 * len(variants) - 1)]
    for name, key, nd in rows:
        if isinstance(key, tuple):
            cells = [f"{fmt(med(by[v], key[0]), 0)} / {fmt(med(by[v], key[1]), 0)}"
                     for v in variants]
            lines.append(f"| {name} | " + " | ".join(cells) + " |" * len(variants))
            continue
        vals = [med(by[v], key) for v in variants]
        rts = [ratio(x, vals[0]) if key in ratio_keys else "" for x in vals[1:]]
        lines.append(f"| {name} | " + " | ".join([fmt(x, nd) for x in vals] + rts) + " |")
    return lines


def report(meta, runs):
    variants = meta["variants"]
    lines = [f"# Redis Streams sink: cost and throughput ({meta['date']})", "",
             f"Gateway `--shards 1` in memory mode pinned to CPU {meta['gateway_cpu']} (its sink "
             f"plane thread beside its shard), load tool on CPU {meta['tool_cpu']}, a "
             f"redis-server of the script's own (no persistence) on CPU {meta['redis_cpu']}. "
             f"`off` = no `[redis]`; `sink` = `[redis] mode = \"sink\"` mirroring the run's "
             f"topic, every other sink setting at its default (sink_batch 512, "
             f"sink_queue_events 100000, overflow block). Fresh gateway and topic per run, "
             f"variants alternating, medians of {meta['reps']}. Commit {meta['commit']}.", ""]
    fan = [r for r in runs if r["part"] == "fanout"]
    if fan:
        by = {v: [r for r in fan if r["variant"] == v] for v in variants}
        lines += [f"## Fan-out: {meta['subscribers']} SSE subscribers x {meta['rate']} events/s",
                  "", f"`loadtest --subscribers {meta['subscribers']} --rate {meta['rate']}` "
                  f"(one topic, 100 B events, open loop, {meta['step_secs']} s step).", ""]
        rows = [("deliveries/s", "deliveries_per_s", 0),
                ("publish-to-receipt p50 ms", "p50_ms", 2),
                ("publish-to-receipt p99 ms", "p99_ms", 2),
                ("max ms", "max_ms", 1),
                ("gateway CPU s (the step)", "gateway_cpu_s", 2),
                ("deliveries per gateway core-second", "deliveries_per_gateway_core_s", 0),
                ("gateway CPU s (the run)", "gateway_cpu_run_s", 2),
                ("Redis CPU s (the run)", "redis_cpu_run_s", 3),
                ("events mirrored/s (step)", "mirrored_per_s", 1),
                ("entries in the stream at the end (XLEN)", "stream_entries", 0),
                ("sink lag at the end", "sink_lag_end", 0),
                ("sink lag, highest sample", "sink_lag_max", 0),
                ("lost / duplicates", ("lost", "duplicates"), 0)]
        lines += median_table(by, variants, rows, (
            "deliveries_per_s", "p50_ms", "p99_ms", "gateway_cpu_s",
            "deliveries_per_gateway_core_s", "gateway_cpu_run_s"))
        lines += ["", "| run | variant | deliveries/s | p50 | p99 | max | lost | gateway CPU s "
                  "| mirrored | XLEN | lag end / max | others on gateway CPU | load before |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in fan:
            lines.append(
                f"| {r['tag']} | {r['variant']} | {fmt(r['deliveries_per_s'], 0)} | "
                f"{fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {fmt(r['max_ms'], 1)} | "
                f"{r['lost']} | {fmt(r['gateway_cpu_s'])} | {fmt(r['mirrored'], 0)} | "
                f"{fmt(r['stream_entries'])} | {fmt(r['sink_lag_end'], 0)} / "
                f"{fmt(r['sink_lag_max'], 0)} | {fmt(r['gateway_cpu_other'])} | "
                f"{fmt(r['load_before'])} |")
        lines.append("")
    sat = [r for r in runs if r["part"] == "saturation"]
    if sat:
        by = {v: [r for r in sat if r["variant"] == v] for v in variants}
        lines += [f"## Saturation: closed-loop publishes, {meta['connections']} connections x "
                  f"{meta['batch']}-event NDJSON, {meta['size']} B events, no subscribers", "",
                  f"`loadtest publish --connections {meta['connections']} --batch "
                  f"{meta['batch']} --size {meta['size']} --warmup {meta['warmup']} --duration "
                  f"{meta['duration']}`; mirrored/s is the slope of "
                  "sluicegate_redis_sink_mirrored_total over the measured window (/metrics "
                  f"sampled every {meta['sample_secs']} s); after the load stops the sink "
                  "drains what is queued (drain s).", ""]
        rows = [("publish events/s accepted (2xx)", "events_per_s", 0),
                ("publishes refused/s (503, queue at its bound)", "non_2xx_per_s", 0),
                ("publish p50 ms", "p50_ms", 3), ("publish p99 ms", "p99_ms", 3),
                ("events mirrored/s", "mirrored_per_s", 0),
                ("sink lag, highest sample", "sink_lag_max", 0),
                ("sink lag when the load stopped", "sink_lag_at_stop", 0),
                ("drain s (the lag gauge is refreshed every 0.5 s)", "drain_s", 2),
                ("gateway CPU (cores)", "gateway_cpu", 2),
                ("sink thread CPU µs per mirrored entry", "sink_thread_us_per_entry", 2),
                ("Redis CPU (cores)", "redis_cpu_per_s", 2),
                ("sink retries / dropped", ("sink_retries", "sink_dropped"), 0)]
        lines += median_table(by, variants, rows, (
            "events_per_s", "gateway_cpu", "mirrored_per_s", "sink_thread_us_per_entry",
            "drain_per_s"))
        for v in variants:
            if v != "off" and "off" in by:
                m, o = med(by[v], "mirrored_per_s"), med(by["off"], "events_per_s")
                lines += ["", f"Mirrored events/s with the sink on ({v}) vs publish events/s "
                          f"with it off: {fmt(m, 0)} / {fmt(o, 0)} = {ratio(m, o)}."]
        lines += ["", "| run | variant | events/s | 503/s | p99 ms | mirrored/s | lag max | "
                  "lag at stop | drain s | gateway CPU | Redis CPU | others on gateway CPU | "
                  "load before |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sat:
            lines.append(
                f"| {r['tag']} | {r['variant']} | {fmt(r['events_per_s'], 0)} | "
                f"{fmt(r['non_2xx_per_s'], 0)} | {fmt(r['p99_ms'], 3)} | "
                f"{fmt(r['mirrored_per_s'], 0)} | {fmt(r['sink_lag_max'], 0)} | "
                f"{fmt(r['sink_lag_at_stop'], 0)} | {fmt(r['drain_s'])} | "
                f"{fmt(r['gateway_cpu'])} | {fmt(r['redis_cpu_per_s'])} | "
                f"{fmt(r['gateway_cpu_other'])} | {fmt(r['load_before'])} |")
        lines.append("")
    if meta.get("disturbed"):
        lines += [f"Disturbed runs (redone, not counted): {', '.join(meta['disturbed'])}"]
    if meta.get("kept_disturbed"):
        lines += [f"Kept although disturbed (no quiet attempt in 4): "
                  f"{', '.join(meta['kept_disturbed'])}"]
    return "\n".join(lines) + "\n"


def measure(args):
    """Every repetition of every variant of every part, the variants' order rotating."""
    runs, disturbed, kept = [], [], []
    n = 0
    for part in args.parts:
        one = run_fanout if part == "fanout" else run_saturation
        for rep in range(args.reps):
            k = rep % len(args.variants)
            for variant in args.variants[k:] + args.variants[:k]:
                for attempt in range(4):
                    n += 1
                    tag = f"{part}-{variant}-rep{rep}-{n}-{int(time.time())}"
                    log(f"{part} {variant} rep {rep} ...")
                    redis_cli(args, "FLUSHALL")
                    with Gate(args.gate) as gate:
                        load = os.getloadavg()[0]
                        r = one(args, variant, tag)
                    r.update(rep=rep, attempt=attempt, load_before=load)
                    if part == "fanout":
                        log(f"{tag}: {r['deliveries_per_s']:,.0f} deliveries/s, p50 "
                            f"{r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} ms, lost {r['lost']}, "
                            f"gateway CPU {r['gateway_cpu_s']:.2f} s, mirrored "
                            f"{r['mirrored']:.0f}, XLEN {r['stream_entries']}, lag end "
                            f"{r['sink_lag_end']}, others {r['gateway_cpu_other']:.2f}")
                    else:
                        log(f"{tag}: {r['events_per_s']:,.0f} events/s, 503/s "
                            f"{r['non_2xx_per_s']:,.0f}, mirrored/s {fmt(r['mirrored_per_s'], 0)}"
                            f", lag max {fmt(r['sink_lag_max'], 0)}, drain {fmt(r['drain_s'])} s"
                            f", gateway CPU {fmt(r['gateway_cpu'])}, Redis CPU "
                            f"{r['redis_cpu_per_s']:.2f}, others {r['gateway_cpu_other']:.2f}")
                    why = "the gate vanished" if gate.disturbed else (
                        f"gateway CPU {r['gateway_cpu_other']:.2f} busy with others"
                        if r["gateway_cpu_other"] > args.max_other else None)
                    if why and attempt < 3:
                        log(f"{tag}: redone ({why})")
                        disturbed.append(f"{tag} ({why})")
                        continue
                    if why:
                        kept.append(f"{tag} ({why})")
                    runs.append(r)
                    break
    return runs, disturbed, kept


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--bin", default="target/release/sluicegate")
    ap.add_argument("--loadtest", default="target/release/loadtest")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--parts", default="fanout,saturation")
    ap.add_argument("--variants", default="off,sink")
    ap.add_argument("--sink-bin", action="append", default=[],
                    help="NAME=PATH: another build with the sink on, variant sink-NAME (e.g. "
                    "the build before a change, for a before/after figure)")
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--step-secs", type=float, default=10)
    ap.add_argument("--grace-secs", type=float, default=3)
    ap.add_argument("--p99-limit-ms", type=float, default=1000)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--sample-secs", type=float, default=0.5,
                    help="/metrics sampling period while the load runs (the gateway copies "
                    "the sink's counters every 0.5 s)")
    ap.add_argument("--drain-timeout", type=float, default=60)
    ap.add_argument("--gateway-cpu", default="0")
    ap.add_argument("--tool-cpu", default="1")
    ap.add_argument("--redis-cpu", default="1")
    ap.add_argument("--work", default=None, help="scratch root for configs and Redis")
    ap.add_argument("--gate", default=None)
    ap.add_argument("--max-other", type=float, default=0.2,
                    help="redo a run whose gateway CPU spent more than this fraction of the "
                    "time on other processes (after 4 attempts the last is kept, and listed)")
    ap.add_argument("--rerender", action="store_true")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.out is None:
        args.out = os.path.join(REPO, "loadtest", "results",
                                f"{datetime.date.today().isoformat()}-redis-sink")
    if args.rerender:
        rerender(args.out, report)
        return
    args.parts = [p for p in args.parts.split(",") if p]
    for p in args.parts:
        if p not in ("fanout", "saturation"):
            ap.error(f"unknown part {p!r}")
    args.variants = [v for v in args.variants.split(",") if v]
    args.sink_bins = {}
    for b in args.sink_bin:
        name, path = b.split("=", 1)
        args.sink_bins["sink-" + name] = path
    for v in args.variants:
        if v not in ("off", "sink") and v not in args.sink_bins:
            ap.error(f"unknown variant {v!r} (sink-NAME needs --sink-bin NAME=PATH)")
    args.work = args.work or os.path.join("/tmp", f"redis-sink-{os.getpid()}")
    raise_nofile()
    os.makedirs(os.path.join(args.out, "raw"), exist_ok=True)
    meta = {k: getattr(args, k) for k in
            ("bin", "sink_bins", "loadtest", "reps", "parts", "variants", "subscribers", "rate",
             "step_secs", "grace_secs", "connections", "batch", "size", "duration", "warmup",
             "sample_secs", "gateway_cpu", "tool_cpu", "redis_cpu", "max_other")}
    meta["date"] = datetime.date.today().isoformat()
    meta["commit"] = git_commit(REPO)
    meta["redis_version"] = subprocess.run(["redis-server", "--version"], capture_output=True,
                                           text=True).stdout.strip()
    args.redis_proc = start_redis(args)
    try:
        runs, disturbed, kept = measure(args)
    finally:
        stop(args.redis_proc)
    meta["disturbed"], meta["kept_disturbed"] = disturbed, kept
    save_results(args.out, report(meta, runs), {"meta": meta, "runs": runs})


if __name__ == "__main__":
    main()
