"""Plots for the comparison (PNG, matplotlib): p99 latency vs offered deliveries/s per
subscriber count, best deliveries per server core-second vs subscribers, and the latency
distribution of each fixed-load scenario. Usage: plot.py RESULTS_DIR (reads summary.json)."""
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SERVERS = ["sluicegate", "nchan", "pushpin", "sluicegate-ws", "sluicegate-ws-raw", "nchan-ws",
           "pushpin-ws"]
BASE_COLORS = {"sluicegate": "tab:blue", "nchan": "tab:green", "pushpin": "tab:orange"}


def style(s):
    """A server's colour; WebSocket subscribers dashed (raw mode dotted)."""
    ls = ":" if s.endswith("-ws-raw") else "--" if s.endswith("-ws") else "-"
    return {"color": BASE_COLORS[s.split("-")[0]], "ls": ls}


def main(d):
    with open(os.path.join(d, "summary.json")) as f:
        results = json.load(f)["results"]
    keys = sorted({k for s in results.values() for k in s if k.startswith("sweep-")},
                  key=lambda k: int(k.split("-")[1]))
    if keys:  # a run with --only may have no sweep
        sweep_plots(d, results, keys)
    fixed_plot(d, results)


def sweep_plots(d, results, keys):
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for ax, k in zip(axes[0], keys):
        n = int(k.split("-")[1])
        for s in SERVERS:
            by_rate = {}
            for r in results.get(s, {}).get(k, []):
                for st in (r or {}).get("steps", []):
                    by_rate.setdefault(st["rate"], []).append(st["latency"]["p99_ms"])
            xs = sorted(by_rate)
            if xs:
                ax.plot([x * n for x in xs], [statistics.median(by_rate[x]) for x in xs],
                        marker="o", label=s, **style(s))
        ax.axhline(100, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title("%d subscribers" % n)
        ax.set_xlabel("offered deliveries/s")
        ax.set_ylabel("p99 latency (ms)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(d, "latency_vs_rate.png"), dpi=100)

    fig, ax = plt.subplots(figsize=(6, 4))
    for s in SERVERS:
        xs, ys = [], []
        for k in keys:
            vals = []
            for r in results.get(s, {}).get(k, []):
                if r and r.get("best_step") is not None:
                    vals.append(r["steps"][r["best_step"]]["deliveries_per_core_s"])
            if vals:
                xs.append(int(k.split("-")[1]))
                ys.append(statistics.median(vals))
        if xs:
            ax.plot(xs, ys, marker="o", label=s, **style(s))
    ax.set_xscale("log")
    ax.set_xlabel("subscribers (one topic)")
    ax.set_ylabel("deliveries per server core-second\n(at the highest sustained rate)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(d, "deliveries_per_core_second.png"), dpi=100)



def fixed_plot(d, results):
    # One panel per fixed-load scenario that was run (1k x 50/s, 10k x 5/s, 100 x 1000/s).
    fixed = [(k, t) for k, t in (("fixed", "1k subscribers x 50 events/s"),
                                 ("fixed-10k", "10k subscribers x 5 events/s"),
                                 ("fixed-100", "100 subscribers x 1000 events/s"))
             if any(results.get(s, {}).get(k) for s in SERVERS)]
    if not fixed:
        return
    fig, axes = plt.subplots(1, max(len(fixed), 1), figsize=(6 * max(len(fixed), 1), 4),
                             squeeze=False)
    for ax, (key, title) in zip(axes[0], fixed):
        for s in SERVERS:
            runs = [r for r in results.get(s, {}).get(key, []) if r and r.get("steps")]
            if not runs:
                continue
            dist = runs[len(runs) // 2]["steps"][0]["latency"]["distribution"]
            pts = [(p, v) for p, v in dist if p < 100]
            ax.plot([1 / (1 - p / 100) for p, _ in pts], [v for _, v in pts], marker="o",
                    label=s, **style(s))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([1, 2, 10, 100, 1000, 10000])
        ax.set_xticklabels(["0%", "50%", "90%", "99%", "99.9%", "99.99%"])
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency (ms)")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(d, "fixed_load_latency.png"), dpi=100)


if __name__ == "__main__":
    main(sys.argv[1])
