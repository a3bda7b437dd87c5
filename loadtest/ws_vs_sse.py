#!/usr/bin/env python3
"""Sluicegate's WebSocket subscribers against its SSE subscribers, from a comparison's
summary.json (compare.py with --servers sluicegate,sluicegate-ws[,sluicegate-ws-raw]): the
issue's two targets, WebSocket deliveries per server core-second within 10% of SSE's on the
same scenario, and RSS per idle WebSocket connection at most SSE's + 1 KiB. Medians of the
repetitions. Usage: loadtest/ws_vs_sse.py RESULTS_DIR [SERVER]  (SERVER: sluicegate)"""
import json
import os
import statistics
import sys


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def step_median(runs, f):
    return med([f(r["steps"][0]) for r in runs if r and r.get("steps")])


def main(d, server="sluicegate"):
    with open(os.path.join(d, "summary.json")) as f:
        summary = json.load(f)
    results, labels = summary["results"], summary["meta"]["labels"]
    sse = results.get(server, {})
    variants = [v for v in (server + "-ws", server + "-ws-raw") if v in results]
    print("| scenario | transport | deliveries/s | lost | p50 ms | p99 ms | deliveries per core-second "
          "| vs SSE | target (>= 0.90) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in ("fixed", "fixed-100", "fixed-10k"):
        if not sse.get(key):
            continue
        base = step_median(sse[key], lambda s: s["deliveries_per_core_s"])
        for v in [server] + variants:
            runs = results[v].get(key, [])
            if not runs:
                continue
            dcs = step_median(runs, lambda s: s["deliveries_per_core_s"])
            ratio = dcs / base if dcs and base else None
            print("| %s | %s | %.0f | %.0f | %.2f | %.2f | %.0f | %s | %s |" % (
                labels.get(key, key), v.replace(server, "").lstrip("-") or "sse",
                step_median(runs, lambda s: s["deliveries_per_s"]),
                step_median(runs, lambda s: s["lost"]),
                step_median(runs, lambda s: s["latency"]["p50_ms"]),
                step_median(runs, lambda s: s["latency"]["p99_ms"]), dcs,
                "%.3f" % ratio if ratio else "n/a",
                "" if v == server else ("met" if ratio and ratio >= 0.9 else "missed")))
    if sse.get("idle"):
        print()
        print("| idle connections | transport | connected | RSS per connection | vs SSE "
              "| target (<= SSE + 1 KiB) |")
        print("|---|---|---|---|---|---|")
        rss = lambda runs: med([r["rss_per_connection_bytes"] for r in runs if r])
        base = rss(sse["idle"])
        for v in [server] + variants:
            runs = results[v].get("idle", [])
            if not runs:
                continue
            b = rss(runs)
            print("| %d | %s | %.0f | %.0f B | %+.0f B | %s |" % (
                runs[0]["subscribers"] if runs[0] else 0,
                v.replace(server, "").lstrip("-") or "sse",
                med([r["connected"] for r in runs if r]), b, b - base,
                "" if v == server else ("met" if b - base <= 1024 else "missed")))


if __name__ == "__main__":
    main(*sys.argv[1:])
