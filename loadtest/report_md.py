"""Renders the comparison's markdown table from the per-run JSON reports (median of the
repetitions for every figure)."""
import statistics

import probes

BASE = ["sluicegate", "nchan", "pushpin"]
# Row order: each server's SSE row, then its WebSocket rows.
ORDER = ["sluicegate", "sluicegate-ws", "sluicegate-ws-raw", "nchan", "nchan-ws", "pushpin",
         "pushpin-ws"]
SERVERS = BASE  # rows of the tables being rendered (set by render)
LABELS = {}


def row_servers(results):
    """The three servers' SSE rows always (n/a when absent), WebSocket rows when measured."""
    return [s for s in ORDER if s in BASE or s in results]


def label(s):
    return LABELS.get(s, s)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def best(r):
    if not r or r.get("best_step") is None:
        return None
    return r["steps"][r["best_step"]]


def only_step(r):
    return r["steps"][0] if r and r.get("steps") else None


def fmt(v, spec="%.0f"):
    return "n/a" if v is None else spec % v


def sweep_rows(meta, results):
    keys = sorted({k for s in results.values() for k in s if k.startswith("sweep-")},
                  key=lambda k: int(k.split("-")[1]))
    rows = ["| subscribers | server | highest sustained deliveries/s | at events/s | p99 ms there | "
            "deliveries per server core-second | load tool CPU there | runs that passed a step |",
            "|---|---|---|---|---|---|---|---|"]
    for k in keys:
        for s in SERVERS:
            runs = results.get(s, {}).get(k, [])
            if not runs and s not in BASE:
                continue  # a WebSocket row only where it was measured
            bs = [best(r) for r in runs]
            # The medians skip runs that passed no step, so say how many did.
            rows.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                k.split("-")[1], label(s), fmt(med([b and b["deliveries_per_s"] for b in bs])),
                fmt(med([b and b["rate"] for b in bs])),
                fmt(med([b and b["latency"]["p99_ms"] for b in bs]), "%.1f"),
                fmt(med([b and b["deliveries_per_core_s"] for b in bs])),
                fmt(med([b and b["tool_cpu_util"] * 100 for b in bs]), "%.0f%%"),
                "%d / %d" % (sum(b is not None for b in bs), len(bs))))
    return rows


def per(x, field):
    """A per-delivery figure of a step (None when the run did not record it)."""
    return x.get(field) if x else None


def cost_cells(st):
    """Per-delivery cost columns of the fixed-load and first-step tables: SSE write syscalls
    (Sluicegate's /metrics), server context switches (/proc), and, with --perf, every server
    syscall and the wake-ups it performed; with --probes, Sluicegate's executor task wake-ups."""
    g = lambda f: med([per(x, f) for x in st])
    return [fmt(g("sse_writes_per_delivery"), "%.3f"), fmt(g("ctx_switches_per_delivery"), "%.4f"),
            fmt(g("syscalls_per_delivery"), "%.3f"), fmt(g("wakeups_per_delivery"), "%.3f"),
            fmt(med([probes.per_delivery(x, "task_schedule") for x in st]), "%.2f"),
            fmt(med([probes.per_delivery(x, "task_run") for x in st]), "%.2f")]


COST_HEAD = ("SSE writes per delivery | context switches per delivery | syscalls per delivery "
             "(perf) | wake-ups per delivery (perf) | task wake-ups per delivery (uprobes) | "
             "task polls per delivery (uprobes)")


def busy_cell(runs):
    """Median load average before the runs and CPU share taken by other processes during them."""
    ms = [r["machine"] for r in runs if r and r.get("machine")]
    if not ms:
        return "n/a"
    return "%.2f / %.0f%%" % (med([m["loadavg_before"][0] for m in ms]),
                              med([m["other_cpu_util"] * 100 for m in ms]))


def first_step_rows(results):
    """The sweep's first step (25k offered deliveries/s) in detail, passed or not: where the
    large fan-outs are compared at the same load."""
    keys = sorted({k for s in results.values() for k in s if k.startswith("sweep-")},
                  key=lambda k: int(k.split("-")[1]))
    rows = ["| subscribers | server | events/s | deliveries/s | lost | p50 ms | p99 ms | max ms | "
            "server CPU | deliveries per core-second | " + COST_HEAD + " | load avg before / other "
            "CPU during |", "|---" * 17 + "|"]
    for k in keys:
        for s in SERVERS:
            runs = results.get(s, {}).get(k, [])
            if not runs:
                continue
            st = [only_step(r) for r in runs]
            g = lambda f: med([x and f(x) for x in st])
            rows.append("| %s |" % " | ".join([
                k.split("-")[1], label(s), fmt(g(lambda x: x["rate"]), "%g"),
                fmt(g(lambda x: x["deliveries_per_s"])), fmt(g(lambda x: x["lost"])),
                fmt(g(lambda x: x["latency"]["p50_ms"]), "%.1f"),
                fmt(g(lambda x: x["latency"]["p99_ms"]), "%.1f"),
                fmt(g(lambda x: x["latency"]["max_ms"]), "%.1f"),
                fmt(g(lambda x: x["server_cpu_s"] / x["seconds"] * 100), "%.0f%%"),
                fmt(g(lambda x: x["deliveries_per_core_s"]))] + cost_cells(st) + [busy_cell(runs)]))
    return rows


def fixed_rows(results, key="fixed"):
    rows = ["| server | deliveries/s | lost | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | "
            "server CPU | deliveries per core-second | " + COST_HEAD + " | load avg before / "
            "other CPU during |", "|---" * 17 + "|"]
    for s in SERVERS:
        runs = results.get(s, {}).get(key, [])
        if not runs and s not in BASE:
            continue
        st = [only_step(r) for r in runs]
        g = lambda f: med([x and f(x) for x in st])
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label(s), fmt(g(lambda x: x["deliveries_per_s"])), fmt(g(lambda x: x["lost"])),
            fmt(g(lambda x: x["latency"]["p50_ms"]), "%.2f"),
            fmt(g(lambda x: x["latency"]["p90_ms"]), "%.2f"),
            fmt(g(lambda x: x["latency"]["p99_ms"]), "%.2f"),
            fmt(g(lambda x: x["latency"]["p999_ms"]), "%.2f"),
            fmt(g(lambda x: x["latency"]["max_ms"]), "%.2f"),
            fmt(g(lambda x: x["server_cpu_s"] / x["seconds"] * 100), "%.0f%%"),
            fmt(g(lambda x: x["deliveries_per_core_s"])), " | ".join(cost_cells(st)),
            busy_cell(runs)))
    return rows


def idle_rows(results):
    rows = ["| server | connected | RSS per connection | server RSS with all connected | "
            "heartbeat bytes per subscriber in the hold |", "|---|---|---|---|---|"]
    for s in SERVERS:
        rs = [r for r in results.get(s, {}).get("idle", []) if r]
        if not rs and s not in BASE:
            continue
        g = lambda f: med([f(r) for r in rs])
        rows.append("| %s | %s / %s | %s | %s | %s |" % (
            label(s), fmt(g(lambda r: r["connected"])), fmt(g(lambda r: r["subscribers"])),
            fmt(g(lambda r: r["rss_per_connection_bytes"] / 1024), "%.1f KiB"),
            fmt(g(lambda r: r["server_rss_connected_bytes"] / 2**20), "%.0f MiB"),
            fmt(g(lambda r: r["idle_bytes_received"] / max(r["connected"], 1)), "%.0f")))
    return rows


def slow_rows(results):
    rows = ["| server | fast deliveries/s | lost (fast) | p50 ms | p99 ms | max ms | "
            "server RSS growth while publishing | disconnected |", "|---|---|---|---|---|---|---|---|"]
    for s in SERVERS:
        rs = [r for r in results.get(s, {}).get("slow", []) if r]
        if not rs and s not in BASE:
            continue
        st = [only_step(r) for r in rs]
        g = lambda f: med([x and f(x) for x in st])
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label(s), fmt(g(lambda x: x["deliveries_per_s"])), fmt(g(lambda x: x["lost"])),
            fmt(g(lambda x: x["latency"]["p50_ms"]), "%.2f"),
            fmt(g(lambda x: x["latency"]["p99_ms"]), "%.2f"),
            fmt(g(lambda x: x["latency"]["max_ms"]), "%.2f"),
            fmt(med([(r["server_rss_end_bytes"] - r["server_rss_connected_bytes"]) / 2**20
                     for r in rs]), "%.1f MiB"),
            fmt(med([r["disconnects"] for r in rs]))))
    return rows


def render(meta, results):
    global SERVERS, LABELS
    SERVERS = row_servers(results)
    ws = any("-ws" in s for s in results)
    # With WebSocket rows present, every row says its transport.
    LABELS = {s: s.replace("-ws-raw", " WS raw").replace("-ws", " WS") + ("" if "-ws" in s or not ws
              else " SSE") for s in SERVERS}
    out = ["Measured %s on %s; each figure is the median of the repetitions; servers pinned to "
           "CPU 0, load tool to CPU 1, everything on loopback (%d s for the whole run)." % (
               meta["date"], meta["machine"], meta["seconds"]), ""]
    have = lambda key: any(results.get(s, {}).get(key) for s in SERVERS)
    # Sections whose scenario was not run (--only) are left out rather than shown as n/a.
    if any(k.startswith("sweep-") for s in results.values() for k in s):
        out += ["**1. Fan-out sweep** (one topic, 100 B events, rate doubled each step until p99 > "
                "100 ms or any loss):", ""] + sweep_rows(meta, results) + [""]
        out += ["**1b. First step of each sweep** (25k offered deliveries/s, passed or not):", ""]
        out += first_step_rows(results) + [""]
    for n, key in ((2, "fixed"), ("2b", "fixed-10k"), ("2c", "fixed-100")):
        if have(key):
            out += ["**%s. Fixed load** (%s, 100 B):" % (n, meta["labels"].get(key, key)), ""]
            out += fixed_rows(results, key) + [""]
    if have("idle"):
        out += ["**3. Idle capacity** (%s, heartbeat or ping every 5 s):" % meta["labels"].get(
                "idle", ""),
                ""] + idle_rows(results) + [""]
    if have("slow"):
        out += ["**4. Slow consumers** (%s; figures are for the readers that keep up):" % (
            meta["labels"].get("slow", "")), ""] + slow_rows(results) + [""]
    out += ["Per-delivery costs are over each step and its grace period: SSE writes from "
            "Sluicegate's `/metrics` (`sse_writes_total / deliveries_total`, heartbeats "
            "included; the counter covers the writes to WebSocket subscribers too); context switches of the server's threads from `/proc`; syscalls "
            "(`raw_syscalls:sys_enter`) and wake-ups the server performed (`sched:sched_wakeup`) "
            "from `perf stat` when run with `--perf`; with `--probes`, glommio's "
            "`RawTask::schedule` (a task woken and queued) and `RawTask::run` (a task polled) "
            "counted by uprobes, which slow the server, so such a run gives counts only. "
            "\"load avg before\" is the 1-minute load average before each run; \"other CPU\" is "
            "the user + system time of processes other than the server and the load tool during "
            "it, in cores (100% = one of the two; the machine is shared); `raw/*.json` also "
            "hold softirq and steal time.", ""]
    return "\n".join(out)
