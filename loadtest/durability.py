#!/usr/bin/env python3
"""Publish throughput of the embedded broker's storage modes, and recovery time of its log.

Benchmark (default): for each scenario, each repetition and each mode in {memory, interval,
batch} (the modes taking turns, so a slow spell of this shared machine hits all of them alike),
a fresh gateway (`--shards 1`, pinned to CPU 0, a fresh data directory) runs `loadtest publish`
(closed loop, pinned to CPU 1). Its /metrics are read before and after the run: the mean
fdatasync latency (sluicegate_storage_fsync_micros_total / sluicegate_storage_fsyncs_total,
summed over shards) and events per fsync (records written / fsyncs). Writes OUT/results.md
(a table of medians per scenario, with the ratio to memory mode), OUT/summary.json and the load
tool's raw JSON in OUT/raw/.

Scenarios (CONNECTIONSxBATCHxBYTES): a = 64x10x100, b = 64x10x4096, c = 1x1x100, d = 64x1x100.

Recovery (--recovery): fills a fresh data directory with ~--recovery-gib GiB (durable,
fsync=interval, 64 connections x 10 x 4 KB NDJSON batches, one topic, retention off), stops
the gateway with SIGTERM, then measures the recovery time the gateway logs
(`durable log recovered ... millis=N`) and the time to /healthz, over --restarts starts each:
after a clean stop (SIGTERM); after `kill -9` while publishing (4 connections x 4 KB events);
and after a clean stop with the page cache dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`,
skipped with a note when not permitted). Writes OUT/recovery.md and OUT/recovery.json.

Quiet machine: with --gate FILE, every run waits until FILE exists (polled every 10 s), and a
run during which FILE disappeared (checked every second) is recorded as disturbed and redone.

Comparing builds: --bin NAME=PATH, repeated (e.g. `--bin main=/tmp/main-sluicegate --bin
new=target/release/sluicegate`): each durable mode runs once per build, named MODE@NAME, all
of them interleaved in the same repetition; memory mode runs with the first build only (the
builds compared differ in the durable log). Ratios are to that memory run.

Usage: loadtest/durability.py --out DIR [--bin [NAME=]target/release/sluicegate ...]
       [--loadtest target/release/loadtest] [--reps 3] [--duration 10] [--warmup 2]
       [--scenarios a,b,c,d] [--modes memory,interval,batch] [--data-root /work/bench-data]
       [--gate /tmp/measure-go] [--recovery] [--no-bench]
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from variants import free_port, log, med, metrics, stop, wait_healthy  # noqa: E402

SERVER_CPU = "0"
TOOL_CPU = "1"

SCENARIOS = {
    "a": (64, 10, 100, "64 connections x 10-event NDJSON batches, 100 B events"),
    "b": (64, 10, 4096, "64 connections x 10-event NDJSON batches, 4 KB events"),
    "c": (1, 1, 100, "1 connection x single-event publishes, 100 B"),
    "d": (64, 1, 100, "64 connections x single-event publishes, 100 B"),
}
MODES = {
    "memory": ["--set", "storage.mode=memory"],
    "interval": ["--set", "storage.mode=durable", "--set", "storage.fsync=interval"],
    "batch": ["--set", "storage.mode=durable", "--set", "storage.fsync=batch"],
}
STORAGE_COUNTERS = ("storage_fsyncs_total", "storage_fsync_micros_total",
                    "storage_records_written_total", "storage_bytes_written_total",
                    "storage_flushes_total", "storage_errors_total")


class Gate:
    """The quiet-machine rule: wait for FILE before a run; a run during which it vanished is
    disturbed."""

    def __init__(self, path):
        self.path = path
        self.disturbed = False
        self._stop = threading.Event()
        self._thread = None

    def wait(self):
        if not self.path:
            return
        waited = False
        while not os.path.exists(self.path):
            if not waited:
                log(f"waiting for {self.path} (quiet machine) ...")
                waited = True
            time.sleep(10)
        if waited:
            log(f"{self.path} is back")

    def __enter__(self):
        self.wait()
        self.disturbed = False
        self._stop.clear()
        if self.path:
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(1.0):
            if not os.path.exists(self.path):
                self.disturbed = True

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread:
            self._thread.join()
        return False


def start_server(binary, port, mode_args, data_dir, logfile, extra=()):
    cmd = ["taskset", "-c", SERVER_CPU, binary, "--listen", f"127.0.0.1:{port}", "--shards", "1",
           "--cpus", SERVER_CPU, *mode_args, "--set", f'storage.data_dir="{data_dir}"', *extra]
    out = open(logfile, "ab")
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), cmd
    finally:
        out.close()


def loadtest_cmd(loadtest, port, conns, batch, size, duration, warmup, pid=None, topic=None):
    cmd = ["taskset", "-c", TOOL_CPU, loadtest, "publish", "--url", f"127.0.0.1:{port}",
           "--connections", str(conns), "--batch", str(batch), "--size", str(size),
           "--duration", str(duration), "--warmup", str(warmup), "--topics", "1", "--json", "-"]
    if pid:
        cmd += ["--server-pid", str(pid)]
    if topic:
        cmd += ["--topic-prefix", topic]
    return cmd


def run_load(cmd, timeout):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"loadtest failed ({out.returncode}): {out.stderr[-500:]}")
    return json.loads(out.stdout)


def fresh_dir(root, name):
    path = os.path.join(root, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def bench_one(args, scenario, mode, tag):
    conns, batch, size, _ = SCENARIOS[scenario]
    port = free_port()
    data_dir = fresh_dir(args.data_root, tag)
    logfile = os.path.join(args.data_root, tag + ".log")
    name, _, build = mode.partition("@")
    binary = args.bins[build] if build else args.bin
    server, _ = start_server(binary, port, MODES[name], os.path.join(data_dir, "log"), logfile)
    try:
        wait_healthy(port, server)
        before = metrics(port, strip="sluicegate_")
        load = os.getloadavg()[0]
        report = run_load(loadtest_cmd(args.loadtest, port, conns, batch, size, args.duration,
                                       args.warmup, server.pid),
                          timeout=args.duration + args.warmup + 60)
        after = metrics(port, strip="sluicegate_")
    finally:
        code = stop(server)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in STORAGE_COUNTERS}
    fs = delta["storage_fsyncs_total"]
    run = {
        "scenario": scenario, "mode": mode, "load_before": load, "server_exit": code,
        "events_per_s": report["events_per_s"], "requests_per_s": report["requests_per_s"],
        "p50_ms": report["latency_us"]["p50"] / 1000, "p99_ms": report["latency_us"]["p99"] / 1000,
        "non_2xx": report["non_2xx"], "errors": report["errors"],
        "server_cpu": report.get("server_cpu"), "tool_cpu": report.get("tool_cpu"),
        "storage": delta,
        "fsync_mean_ms": delta["storage_fsync_micros_total"] / fs / 1000 if fs else None,
        "events_per_fsync": delta["storage_records_written_total"] / fs if fs else None,
        "events_per_flush": (delta["storage_records_written_total"]
                             / delta["storage_flushes_total"])
        if delta["storage_flushes_total"] else None,
        "loadtest": report,
    }
    shutil.rmtree(data_dir, ignore_errors=True)
    if os.path.exists(logfile) and code == 0:
        os.remove(logfile)
    return run


def fmt(v, nd=2):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return str(v)


def bench(args):
    raw = os.path.join(args.out, "raw")
    os.makedirs(raw, exist_ok=True)
    results, disturbed = {}, []
    n = 0
    for sc in args.scenarios:
        for rep in range(args.reps):
            for mode in args.modes:
                for attempt in range(4):
                    n += 1
                    tag = f"run-{os.getpid()}-{n}"
                    with Gate(args.gate) as gate:
                        r = bench_one(args, sc, mode, tag)
                    r["rep"], r["attempt"] = rep, attempt
                    name = f"{sc}-{mode}-rep{rep}" + (f"-disturbed{attempt}" if gate.disturbed
                                                      else "")
                    with open(os.path.join(raw, name + ".json"), "w") as f:
                        json.dump(r, f, indent=1)
                    log(f"{sc} {mode} rep {rep}{' DISTURBED' if gate.disturbed else ''}: "
                        f"{r['events_per_s']:.0f} ev/s {r['requests_per_s']:.0f} req/s "
                        f"p50 {r['p50_ms']:.3f} p99 {r['p99_ms']:.3f} ms non-2xx {r['non_2xx']} "
                        f"cpu {fmt(r['server_cpu'])} fsync {fmt(r['fsync_mean_ms'], 3)} ms "
                        f"ev/fsync {fmt(r['events_per_fsync'], 1)} (load {r['load_before']:.2f})")
                    if gate.disturbed:
                        disturbed.append(name)
                        continue
                    results.setdefault((sc, mode), []).append(r)
                    break
    lines = [f"# Publish throughput by storage mode ({time.strftime('%Y-%m-%d')})", "",
             f"One shard pinned to CPU {SERVER_CPU}, `loadtest publish` (closed loop, one request "
             f"in flight per connection) pinned to CPU {TOOL_CPU}; {args.warmup} s warm-up, "
             f"{args.duration} s measured; medians of {args.reps} runs, modes interleaved; a "
             "fresh gateway and data directory per run. Latency is per request (send to "
             "answer). fdatasync figures are from /metrics over the whole run (warm-up "
             "included). Ratio = events/s / memory mode's.", ""]
    for sc in args.scenarios:
        conns, batch, size, label = SCENARIOS[sc]
        lines += [f"## ({sc}) {label}", "",
                  "| mode | events/s | requests/s | p50 ms | p99 ms | vs memory | non-2xx "
                  "| server CPU | fsyncs/s | mean fdatasync ms | events per fsync |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        base = med(results.get((sc, "memory"), []), "events_per_s")
        for mode in args.modes:
            rs = results.get((sc, mode), [])
            if not rs:
                continue
            eps = med(rs, "events_per_s")
            fsyncs = [r["storage"]["storage_fsyncs_total"] / (args.duration + args.warmup)
                      for r in rs]
            lines.append(
                f"| {mode} | {fmt(eps, 0)} | {fmt(med(rs, 'requests_per_s'), 0)} | "
                f"{fmt(med(rs, 'p50_ms'), 3)} | {fmt(med(rs, 'p99_ms'), 3)} | "
                f"{fmt(eps / base, 3) if eps and base else 'n/a'} | "
                f"{fmt(med(rs, 'non_2xx'), 0)} | {fmt(med(rs, 'server_cpu'))} | "
                f"{fmt(statistics.median(fsyncs), 0) if mode != 'memory' else 'n/a'} | "
                f"{fmt(med(rs, 'fsync_mean_ms'), 3)} | {fmt(med(rs, 'events_per_fsync'), 1)} |")
        lines.append("")
    targets = ["## Targets", ""]
    for sc in args.scenarios:
        base = med(results.get((sc, "memory"), []), "events_per_s")
        for mode in [m for m in args.modes if m.partition("@")[0] == "interval"]:
            iv = med(results.get((sc, mode), []), "events_per_s")
            if base and iv:
                targets.append(f"- ({sc}) fsync={mode} at {iv / base:.1%} of memory mode "
                               f"(target >= 80%): {'met' if iv / base >= 0.8 else 'missed'}")
    if "a" in args.scenarios:
        for mode in [m for m in args.modes if m.partition("@")[0] == "batch"]:
            b = med(results.get(("a", mode), []), "events_per_s")
            if b:
                targets.append(f"- (a) fsync={mode} {b:,.0f} events/s (target >= 50,000): "
                               f"{'met' if b >= 50000 else 'missed'}")
    lines += targets
    if disturbed:
        lines += ["", f"Disturbed runs (redone, not counted): {', '.join(disturbed)}"]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    summary = {"meta": {"reps": args.reps, "duration": args.duration, "warmup": args.warmup,
                        "scenarios": {k: SCENARIOS[k] for k in args.scenarios},
                        "disturbed": disturbed},
               "runs": [{k: v for k, v in r.items() if k != "loadtest"}
                        for rs in results.values() for r in rs]}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(text)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def recovered_line(logfile, after):
    """The fields of the last `durable log recovered` line past byte `after` of `logfile`."""
    with open(logfile, "rb") as f:
        f.seek(after)
        text = ANSI.sub("", f.read().decode(errors="replace"))
    found = None
    for line in text.splitlines():
        if "durable log recovered" in line:
            found = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)\b", line)}
    return found


def drop_caches():
    try:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return None
    except OSError as e:
        return f"cannot drop the page cache: {e}"


def du_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def recovery(args):
    os.makedirs(args.out, exist_ok=True)
    data_dir = os.path.join(fresh_dir(args.data_root, f"recovery-{os.getpid()}"), "log")
    logfile = data_dir + ".server.log"
    durable = MODES["interval"] + ["--set", "storage.retention_bytes=0"]
    target = int(args.recovery_gib * (1 << 30))
    port = free_port()
    topic = f"rec{os.getpid()}-"
    fill_started = time.time()
    server, cmd = start_server(args.bin, port, durable, data_dir, logfile)
    try:
        wait_healthy(port, server)
        written, publishing, chunk = 0, 0.0, 1.0
        while written < target:
            run_load(loadtest_cmd(args.loadtest, port, 64, 10, 4096, round(chunk, 2), 0,
                                  topic=topic), timeout=60)
            publishing += chunk
            written = metrics(port, strip="sluicegate_").get("storage_bytes_written_total", 0)
            log(f"filled {written / (1 << 20):.0f} MiB")
            # Shorter runs near the end, so the log ends close to the target.
            rate = written / publishing
            chunk = min(2.0, max(0.1, (target - written) / rate if rate else 2.0))
    finally:
        code = stop(server)
    fill_s = time.time() - fill_started
    out = {"server_cmd": cmd, "fill_seconds": fill_s, "fill_stop_exit": code,
           "log_bytes_on_disk": du_bytes(data_dir), "phases": {}, "notes": []}
    log(f"filled in {fill_s:.1f} s, {out['log_bytes_on_disk'] / (1 << 30):.3f} GiB on disk")

    def one_start(phase, i, before_start=None):
        with Gate(args.gate) as gate:
            if before_start:
                before_start()
            at = os.path.getsize(logfile)
            port = free_port()
            t0 = time.time()
            server, _ = start_server(args.bin, port, durable, data_dir, logfile)
            try:
                wait_healthy(port, server, timeout=600)
                healthy_s = time.time() - t0
            except RuntimeError:
                stop(server, signal.SIGKILL)
                raise
            line = recovered_line(logfile, at)
        r = {"i": i, "healthz_ms": healthy_s * 1000, "disturbed": gate.disturbed,
             "recovered": line}
        log(f"{phase} {i}: {line} healthz after {healthy_s * 1000:.0f} ms"
            f"{' DISTURBED' if gate.disturbed else ''}")
        return server, port, r

    def phase(name, stop_how, before_start=None):
        runs = []
        attempts = 0
        while len(runs) < args.restarts and attempts < args.restarts + 4:
            attempts += 1
            server, port, r = one_start(name, attempts, before_start)
            stop_how(server, port)
            if r["disturbed"]:
                out["notes"].append(f"{name} start {attempts} disturbed; redone")
                continue
            runs.append(r)
        out["phases"][name] = runs

    def clean(server, _port):
        stop(server)

    def crash(server, port):
        # Publish 4 KB events from 4 connections and kill -9 half a second in.
        load = subprocess.Popen(loadtest_cmd(args.loadtest, port, 4, 1, 4096, 2, 0, topic=topic),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        stop(server, signal.SIGKILL)
        load.wait()

    # The starts after a clean stop (the fill ended with SIGTERM, and so does each start).
    phase("after SIGTERM", clean)
    # Each start here follows a kill -9; the first kill follows one more clean start.
    server, port, _ = one_start("crash setup", 0)
    crash(server, port)
    phase("after kill -9", crash)
    # The last crash phase start ended with a kill -9: one clean start and stop first.
    server, port, _ = one_start("cold setup", 0)
    stop(server)
    why = drop_caches()
    if why:
        out["notes"].append(f"page-cache phase skipped: {why}")
    else:
        phase("after SIGTERM, page cache dropped", clean, before_start=drop_caches)
    with open(os.path.join(args.out, "recovery.json"), "w") as f:
        json.dump(out, f, indent=1)
    lines = ["# Recovery time of the durable log", "",
             f"Filled with ~{args.recovery_gib} GiB (fsync=interval, 64 connections x 10 x 4 KB "
             f"NDJSON, one topic, retention off) in {fill_s:.0f} s; "
             f"{out['log_bytes_on_disk'] / (1 << 30):.3f} GiB on disk. `millis` is what the "
             "gateway logs (`durable log recovered`); healthz is process start to the first "
             f"200 from /healthz. Medians of {args.restarts} starts.", "",
             "| start after | recovery ms (median) | each | healthz ms (median) | records | "
             "bytes | damaged bytes dropped |", "|---|---|---|---|---|---|---|"]
    for name, runs in out["phases"].items():
        ms = [r["recovered"]["millis"] for r in runs if r["recovered"]]
        hz = [r["healthz_ms"] for r in runs]
        last = runs[-1]["recovered"] if runs and runs[-1]["recovered"] else {}
        dropped = [r["recovered"].get("damaged_bytes_dropped", 0) for r in runs if r["recovered"]]
        lines.append(f"| {name} | {fmt(statistics.median(ms), 0) if ms else 'n/a'} | "
                     f"{', '.join(str(m) for m in ms)} | "
                     f"{fmt(statistics.median(hz), 0) if hz else 'n/a'} | "
                     f"{last.get('records', 'n/a')} | {last.get('bytes', 'n/a')} | "
                     f"{', '.join(str(d) for d in dropped)} |")
    if out["notes"]:
        lines += [""] + [f"- {n}" for n in out["notes"]]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "recovery.md"), "w") as f:
        f.write(text)
    print(text)
    shutil.rmtree(os.path.dirname(data_dir), ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory for results.md and the raw JSON")
    ap.add_argument("--bin", action="append", default=None,
                    help="[NAME=]PATH of the gateway; repeat with names to compare builds")
    ap.add_argument("--loadtest", default="target/release/loadtest")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--scenarios", default="a,b,c,d")
    ap.add_argument("--modes", default="memory,interval,batch")
    ap.add_argument("--data-root", default="/work/bench-data",
                    help="where the fresh data directories go (a real disk, not tmpfs)")
    ap.add_argument("--gate", default="", help="run only while this file exists")
    ap.add_argument("--recovery", action="store_true", help="also measure recovery time")
    ap.add_argument("--no-bench", action="store_true", help="skip the throughput runs")
    ap.add_argument("--recovery-gib", type=float, default=1.0)
    ap.add_argument("--restarts", type=int, default=3)
    args = ap.parse_args()
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.modes = [m for m in args.modes.split(",") if m]
    for s in args.scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}")
    for m in args.modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}")
    bins = [b.partition("=") if "=" in b else ("", "", b)
            for b in (args.bin or ["target/release/sluicegate"])]
    args.bins = {name: path for name, _, path in bins}
    args.bin = bins[0][2]
    if len(bins) > 1:
        if any(not name for name, _, _ in bins):
            ap.error("--bin NAME=PATH for every build when comparing builds")
        args.modes = [m if m == "memory" else f"{m}@{name}"
                      for m in args.modes for name, _, _ in bins if m != "memory" or name ==
                      bins[0][0]]
    os.makedirs(args.data_root, exist_ok=True)
    fs = subprocess.run(["df", "-T", args.data_root], capture_output=True, text=True).stdout
    if "tmpfs" in fs:
        log(f"warning: {args.data_root} is on tmpfs: fdatasync figures mean nothing there")
    if not args.no_bench:
        bench(args)
    if args.recovery:
        recovery(args)


if __name__ == "__main__":
    main()
