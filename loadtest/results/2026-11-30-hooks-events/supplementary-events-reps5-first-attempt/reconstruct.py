#!/usr/bin/env python3
"""Rebuilds summary.json for this directory from raw/ and run.log, then results.md with
`hooks_events.py --rerender`. The first attempt of this supplementary run (the old
hooks_events.py, commit s14-figures before its fix) measured every run but crashed while
writing its report (a closed-loop run's result had no `server_exit`), so only raw/ (each
tool's JSON, /metrics before and after) and the progress log were left; the subscriber's
captures were deleted for disk space (the log has their event counts). Not measured here: each
run's CPU 0 / CPU 1 busy fractions (n/a in the tables)."""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", ".."))
from hooks_events import total  # noqa: E402


def metrics(path):
    out = {}
    for line in open(path):
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$', line.strip())
        if m and not line.startswith("#"):
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


LINE = re.compile(r"(events-(\S+?)-(before|after\+sysub|after)-r(\d)): per-core-s \S+ p99 \S+ "
                  r"lost \S+ sys (\S+) \(load ([\d.]+)\)")
runs = []
for line in open(os.path.join(HERE, "run.log")):
    m = LINE.match(line)
    if not m:
        continue
    tag, sc, variant = m.group(1), m.group(2), m.group(3)
    raw = os.path.join(HERE, "raw", tag)
    rep = json.load(open(raw + ".tool.json"))
    m0, m1 = metrics(raw + ".metrics-before.txt"), metrics(raw + ".metrics-after.txt")
    d = lambda n: None if total(m1, n) is None else total(m1, n) - (total(m0, n) or 0)
    num = lambda s: None if s == "n/a" else float(s.replace(",", ""))
    sys_counts = m.group(5).replace("n/a", "na").split("/")
    received = num(sys_counts[2].replace("na", "n/a"))
    r = {"variant": variant, "scenario": sc, "tag": tag, "load_before": float(m.group(6)),
         "events_published_total": d("sluicegate_events_published_total"),
         "system_events_total": total(m1, "sluicegate_system_events_total"),
         "system_events_dropped_total": total(m1, "sluicegate_system_events_dropped_total"),
         "sysub_received": received}
    if sc.startswith("pub"):
        lat, rps = rep["latency_us"], rep["requests_per_s"]
        r.update({"p50_ms": lat["p50"] / 1000, "p99_ms": lat["p99"] / 1000,
                  "max_ms": lat["max"] / 1000, "lost": 0,
                  "published": d("sluicegate_events_published_total"),
                  "deliveries_per_s": rps, "per_core_s": rps / rep["server_cpu"],
                  "server_cpu_s": rep["server_cpu"] * rep["duration_s"]})
    else:
        st = rep["steps"][0]
        r.update({"p50_ms": st["latency"]["p50_ms"], "p99_ms": st["latency"]["p99_ms"],
                  "max_ms": st["latency"]["max_ms"], "lost": st["lost"],
                  "published": st["published"], "deliveries_per_s": st["deliveries_per_s"],
                  "per_core_s": st["deliveries_per_core_s"], "server_cpu_s": st["server_cpu_s"]})
    runs.append(r)
summary = {"args": {"out": HERE, "mode": "events", "bin": "/tmp/bins-s14/after",
                    "before": "/tmp/bins-s14/before", "loadtest": "/tmp/bins-s14/loadtest",
                    "reps": 5, "secs": 10, "fanout_secs": 8, "gate": "/tmp/measure-go",
                    "scenario": ["pub64", "100x1000", "1000x50"]},
           "argv": ["--mode", "events", "--out", "...", "--bin", "/tmp/bins-s14/after",
                    "--before", "/tmp/bins-s14/before", "--loadtest", "/tmp/bins-s14/loadtest",
                    "--gate", "/tmp/measure-go", "--reps", "5", "--scenario", "pub64",
                    "--scenario", "100x1000", "--scenario", "1000x50"],
           "started": "2026-11-30T19:44:06+0000 (first attempt; rebuilt by reconstruct.py)",
           "cpus": 2, "hook_runs": [], "event_runs": runs}
json.dump(summary, open(os.path.join(HERE, "summary.json"), "w"), indent=1)
subprocess.run([sys.executable, os.path.join(HERE, "..", "..", "..", "hooks_events.py"),
                "--out", HERE, "--rerender"], check=True, stdout=subprocess.DEVNULL)
