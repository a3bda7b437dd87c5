#!/usr/bin/env python3
"""Webhook delivery throughput, latency and cost per delivery of one shard, with and without
dead endpoints.

For each scenario (SUBSCRIPTIONS x EVENT BYTES, with 0% or 10% dead endpoints), each
repetition and each variant (clean, then dead, taking turns so a slow spell of this shared
machine hits both alike): a fresh gateway (`--shards 1`, pinned to CPU 0, `storage.mode` per
--storage, memory by default) with a `[webhooks]` config allowing 127.0.0.1/32, a 1 s attempt
timeout and a retry schedule of 1 s delays that outlasts the run; `loadtest webhook-sink`
(answers 200 with content-length 0 on keep-alive connections) and, for the dead variant, a
second sink in `--blackhole` mode (accepts, reads, never answers: every attempt runs into the
timeout), both pinned to CPU 1. SUBSCRIPTIONS endpoints on one topic are created through
`POST /webhooks` (4 keep-alive connections; not measured), 10% of them pointing at the black
hole in the dead variant. Then `loadtest webhook-pub` (open loop, CPU 1) publishes at rates
sweeping the offered *healthy* deliveries/s (rate x healthy subscriptions) upward, --targets,
each for --duration s after a 2 s warm-up at the first target; a step passes when the sink
received deliveries at >= 95% of the offered rate while publishing, >= 99% of (acknowledged
publishes x healthy subscriptions) within --grace s after the last publish, and the
publish-to-receipt p99 is <= --p99-limit-ms. The sweep stops after the
first failing step (that step's delivery rate while publishing is the overload throughput).
Per step: deliveries/s at the sink, latency p50/p99 (from each event's scheduled send time,
written in the event by the publisher, to its receipt, both on CLOCK_REALTIME), gateway CPU
seconds per delivery (utime+stime from /proc/PID/stat over the step, publishes and dead
attempts included), gateway RSS, connections the sink accepted (keep-alive reuse), and the
gateway's webhook counters from /metrics.

Writes OUT/results.md (medians per scenario), OUT/summary.json (every run and step) and the
raw reports of the sinks and the publisher in OUT/raw/.

Descriptors: the gateway and the sink each hold a connection per request in flight (up to one
per subscription); this script raises RLIMIT_NOFILE to its hard limit, which they inherit.

Quiet machine: with --gate FILE, every run waits until FILE exists (polled every 10 s), and a
run during which FILE disappeared (checked every second) is recorded as disturbed and redone.

Usage: loadtest/webhooks.py --out DIR [--bin target/release/sluicegate]
       [--loadtest target/release/loadtest] [--reps 3] [--duration 10]
       [--scenarios 1x100,1x4096,100x100,...] [--variants clean,dead]
       [--targets 5000,10000,20000,40000] [--storage memory|durable] [--max-idle 256]
       [--dead-kind blackhole|refused] [--gate /tmp/measure-go]
"""
import argparse
import http.client
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durability import Gate, fmt  # noqa: E402
from variants import free_port, log, med, metrics, stop, wait_healthy  # noqa: E402

SERVER_CPU = "0"
TOOL_CPU = "1"
SCENARIOS = ["1x100", "1x4096", "100x100", "100x4096", "10000x100", "10000x4096"]
WEBHOOK_COUNTERS = ("webhook_attempts_total", "webhook_delivered_total",
                    "webhook_failures_total", "webhook_dead_letters_total")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_usage(pid):
    """(CPU seconds utime+stime of all threads, RSS bytes) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS, int(fields[21]) * PAGE


class Sink:
    """A `loadtest webhook-sink --control` process: `peek`/`snap` lines in, JSON lines out."""

    def __init__(self, loadtest, port, blackhole, errlog):
        cmd = ["taskset", "-c", TOOL_CPU, loadtest, "webhook-sink", "--listen",
               f"127.0.0.1:{port}", "--control"] + (["--blackhole"] if blackhole else [])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=errlog, text=True, bufsize=1)
        self.port = port

    def ask(self, what):
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"sink on {self.port} exited ({self.proc.poll()})")
        return json.loads(line)

    def close(self):
        """The final report (EOF on stdin ends the sink)."""
        try:
            self.proc.stdin.close()
            line = self.proc.stdout.readline()
            self.proc.wait(timeout=10)
            return json.loads(line) if line else None
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
            return None


def idle_key(binary, max_idle):
    """`max_idle_per_origin = N` if this gateway has the key; else `max_in_flight = N`, which
    sets the idle pool size in builds before the key existed (the benchmark's subscriptions
    have one partition each, so max_in_flight has no other effect here)."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(f"[webhooks]\nmax_idle_per_origin = {max_idle}\n")
    try:
        ok = subprocess.run([binary, "--config", f.name, "--check-config"],
                            capture_output=True).returncode == 0
    finally:
        os.unlink(f.name)
    return f"max_idle_per_origin = {max_idle}" if ok else f"max_in_flight = {max_idle}"


def gateway_config(args):
    return "\n".join([
        "[webhooks]",
        'allow_cidrs = ["127.0.0.1/32"]',
        f"timeout_ms = {args.timeout_ms}",
        "connect_timeout_ms = 1000",
        # Retries every ~1 s (+-20%) for longer than any run: dead endpoints never dead-letter.
        "retry_schedule_s = [" + ", ".join(["1"] * 600) + "]",
        args.idle_line, ""])


def create_subscriptions(port, topic, urls, conns=4):
    """POST /webhooks once per URL over `conns` keep-alive connections; answers by status."""
    statuses = {}
    lock = threading.Lock()
    errors = []

    def worker(part):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = {}
        try:
            for url in part:
                body = json.dumps({"url": url, "topics": [topic]})
                c.request("POST", "/webhooks", body, {"Content-Type": "application/json"})
                r = c.getresponse()
                text = r.read()
                # 7e1d3e1, memory mode: the create answers 404 "no webhook endpoint" although
                # the subscription exists (see results.md); counted apart, checked below.
                key = r.status if r.status != 404 or b"no webhook endpoint" in text else "404?"
                mine[key] = mine.get(key, 0) + 1
        except (OSError, http.client.HTTPException) as e:
            errors.append(repr(e))
        finally:
            c.close()
        with lock:
            for k, v in mine.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=worker, args=(urls[i::conns],)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"creating subscriptions: {errors[0]}")
    return statuses


def wait_subscriptions(port, n, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if metrics(port, strip="sluicegate_").get("webhook_subscriptions", 0) >= n:
            return
        time.sleep(0.2)
    raise RuntimeError(f"fewer than {n} webhook subscriptions running after {timeout} s")


def publish(args, port, topic, rate, size, duration):
    cmd = ["taskset", "-c", TOOL_CPU, args.loadtest, "webhook-pub", "--url", f"127.0.0.1:{port}",
           "--topic", topic, "--rate", f"{rate:.6f}", "--size", str(size),
           "--duration", str(duration), "--connections", "16"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"webhook-pub failed ({out.returncode}): {out.stderr[-500:]}")
    return json.loads(out.stdout)


def drain(sink, expected, grace):
    """Peek at the sink until it has `expected` requests or `grace` s passed; the last peek."""
    deadline = time.time() + grace
    while True:
        r = sink.ask("peek")
        if r["requests"] >= expected or time.time() >= deadline:
            return r
        time.sleep(0.1)


def quiet(sink, expected, timeout=60):
    """Wait until the sink has `expected` requests, or received none for 3 s (longer than a
    1 s timeout plus a 1 s +-20% retry delay; at most `timeout` s), so a warm-up's backlog
    and retries do not spill into the first step."""
    deadline = time.time() + timeout
    last, still_since = -1, time.time()
    while time.time() < deadline:
        n = sink.ask("peek")["requests"]
        if n >= expected:
            return n
        if n != last:
            last, still_since = n, time.time()
        elif time.time() - still_since >= 3.0:
            return n
        time.sleep(0.1)
    return last


def step(args, server, port, topic, healthy, sinks, target, size):
    """One rate step; the sinks were snapped (reset) just before."""
    good, dead = sinks
    rate = target / healthy
    cpu0, _ = proc_usage(server.pid)
    tools0 = sum(proc_usage(k.proc.pid)[0] for k in sinks if k)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m0 = metrics(port, strip="sluicegate_")
    t0 = time.time()
    pub = publish(args, port, topic, rate, size, args.duration)
    at_end = good.ask("peek")
    expected = pub["ok"] * healthy
    drain(good, expected, args.grace)
    cpu1, rss = proc_usage(server.pid)
    wall = time.time() - t0
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The sinks' CPU plus the publisher's (the only child reaped during the step).
    tools = (sum(proc_usage(k.proc.pid)[0] for k in sinks if k) - tools0
             + kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime)
    final = good.ask("snap")
    black = dead.ask("snap") if dead else None
    m1 = metrics(port, strip="sluicegate_")
    delivered = final["requests"]
    p99_ms = final["latency_us"]["p99"] / 1000
    window_rate = at_end["requests"] / pub["elapsed_s"] if pub["elapsed_s"] else 0.0
    ok = (delivered >= 0.99 * expected and window_rate >= 0.95 * target
          and p99_ms <= args.p99_limit_ms and pub["failed"] == 0)
    return {
        "target": target, "rate": rate, "published": pub["ok"], "publish_failed": pub["failed"],
        "expected": expected, "delivered": delivered, "pass": ok,
        "delivered_frac": delivered / expected if expected else None,
        # Deliveries while publishing, per second of publishing: the capacity when overloaded.
        "window_rate": window_rate,
        "p50_ms": final["latency_us"]["p50"] / 1000, "p90_ms": final["latency_us"]["p90"] / 1000,
        "p99_ms": p99_ms, "max_ms": final["latency_us"]["max"] / 1000,
        "gateway_cpu_s": cpu1 - cpu0, "gateway_cpu_util": (cpu1 - cpu0) / wall,
        "tool_cpu_util": tools / wall,
        "cpu_us_per_delivery": (cpu1 - cpu0) / delivered * 1e6 if delivered else None,
        "rss_mib": rss / (1 << 20),
        "sink_accepted": final["accepted"], "sink_open_max": final["open_max"],
        "blackhole_requests": black["requests"] if black else None,
        "blackhole_accepted": black["accepted"] if black else None,
        "webhook": {k: m1.get(k, 0) - m0.get(k, 0) for k in WEBHOOK_COUNTERS},
        "send_lag_p99_ms": pub["send_lag_us"]["p99"] / 1000,
        "sink": final, "blackhole": black, "publisher": pub,
    }


def run_one(args, scenario, variant, tag):
    subs, size = (int(x) for x in scenario.split("x"))
    n_dead = subs // 10 if variant == "dead" else 0
    healthy = subs - n_dead
    good_port, dead_port = free_port(), free_port()
    errlog = open(os.path.join(args.out, "raw", tag + ".stderr"), "ab")
    good = Sink(args.loadtest, good_port, False, errlog)
    dead = (Sink(args.loadtest, dead_port, True, errlog)
            if n_dead and args.dead_kind == "blackhole" else None)
    data_dir = tempfile.mkdtemp(prefix="whbench-", dir=args.data_root)
    cfg = os.path.join(data_dir, "gateway.toml")
    with open(cfg, "w") as f:
        f.write(gateway_config(args))
    port = free_port()
    cmd = ["taskset", "-c", SERVER_CPU, args.bin, "--config", cfg, "--listen",
           f"127.0.0.1:{port}", "--shards", "1", "--cpus", SERVER_CPU,
           "--set", f"storage.mode={args.storage}",
           "--set", f'storage.data_dir="{os.path.join(data_dir, "log")}"']
    logfile = os.path.join(data_dir, "gateway.log")
    with open(logfile, "ab") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    run = {"scenario": scenario, "variant": variant, "subscriptions": subs, "dead": n_dead,
           "healthy": healthy, "size": size, "steps": [], "load_before": os.getloadavg()[0]}
    try:
        wait_healthy(port, server)
        topic = f"wh{os.getpid()}x{tag.rsplit('-', 1)[-1]}"
        # Every tenth endpoint is dead in the dead variant (subs // 10 of them).
        urls = [f"http://127.0.0.1:{dead_port if n_dead and i % 10 == 9 else good_port}"
                f"/hook/{i}" for i in range(subs)]
        t = time.time()
        run["create_statuses"] = create_subscriptions(port, topic, urls)
        wait_subscriptions(port, subs)
        run["create_s"] = time.time() - t
        _, run["rss_idle_mib"] = (lambda u: (u[0], u[1] / (1 << 20)))(proc_usage(server.pid))
        # Warm-up: connections opened, the first target's traffic once.
        warm = publish(args, port, topic, args.targets[0] / healthy, size, args.warmup)
        run["warmup_delivered"] = quiet(good, warm["ok"] * healthy)
        good.ask("snap")
        if dead:
            dead.ask("snap")
        for target in args.targets:
            s = step(args, server, port, topic, healthy, (good, dead), target, size)
            run["steps"].append(s)
            log(f"  {scenario} {variant} {target}/s: delivered {s['delivered']}/{s['expected']} "
                f"({s['window_rate']:.0f}/s while publishing) p50 {s['p50_ms']:.1f} "
                f"p99 {s['p99_ms']:.1f} ms cpu {s['gateway_cpu_util']:.2f} "
                f"{fmt(s['cpu_us_per_delivery'])} us/delivery, sink accepted "
                f"{s['sink_accepted']} conns{' PASS' if s['pass'] else ' FAIL'}")
            if not s["pass"] and not args.keep_going:
                break
    finally:
        run["server_exit"] = stop(server)
        good.close()
        if dead:
            dead.close()
        errlog.close()
        if run.get("server_exit") not in (0, None) or args.keep_logs:
            shutil.copy(logfile, os.path.join(args.out, "raw", tag + ".gateway.log"))
        shutil.rmtree(data_dir, ignore_errors=True)
    passed = [s["target"] for s in run["steps"] if s["pass"]]
    run["saturation"] = max(passed) if passed else 0
    last = run["steps"][-1] if run["steps"] else None
    run["overload_rate"] = last["window_rate"] if last and not last["pass"] else None
    return run


def steps_at(runs, target):
    return [s for r in runs for s in r["steps"] if s["target"] == target]


def report(args, results, disturbed):
    t_max = max(args.targets)
    lines = [f"# Webhook deliveries, one shard ({time.strftime('%Y-%m-%d')})", "",
             f"Gateway `{args.bin}` (`--shards 1`, pinned to CPU {SERVER_CPU}, storage.mode = "
             f"{args.storage}; `[webhooks]` allow_cidrs 127.0.0.1/32, timeout_ms "
             f"{args.timeout_ms}, retries every 1 s, `{args.idle_line}`); receiver "
             f"`loadtest webhook-sink` and publisher `loadtest webhook-pub` (open loop, 16 "
             f"connections) pinned to CPU {TOOL_CPU}. All subscriptions on one topic (one "
             f"partition), so each published event is delivered once per subscription. "
             f"Rate steps of {args.duration} s offering {', '.join(f'{t:,}' for t in args.targets)}"
             f" healthy deliveries/s after a {args.warmup} s warm-up; medians of {args.reps} "
             "runs (clean and dead variants taking turns), a fresh gateway per run.", "",
             "- **saturation**: the highest offered rate at which the sink kept up: it received "
             ">= 95% of the offered rate while publishing, >= 99% of the deliveries owed "
             f"within {args.grace} s after the last publish, and p99 <= "
             f"{args.p99_limit_ms:,.0f} ms. The sweep stops after the first step that fails; "
             "**overload deliveries/s** is the sink's rate while that step published (the "
             f"capacity), `>= {t_max:,}` when no step failed.",
             "- **latency**: from the event's scheduled publish time (written in it by the "
             "publisher) to its receipt at the sink, both on CLOCK_REALTIME; includes up to "
             "~1 ms of the publisher's timer granularity and, with 10,000 subscriptions, the "
             "time to work through one event's 10,000 deliveries.",
             "- **CPU us/delivery**: gateway utime+stime over the step (publish handling and "
             "attempts to dead endpoints included) / deliveries received by the healthy sink.",
             "- **conns accepted**: new connections the healthy sink accepted during the step "
             "(0 = every delivery on a kept-alive connection).",
             "- **tool CPU**: CPU of the sinks and the publisher over the step (they share CPU "
             f"{TOOL_CPU}; near 1.0 the receiver side, not the gateway, is the limit).", ""]
    lines += ["## At the saturation step (medians)", "",
              "| scenario | variant | saturation deliveries/s | overload deliveries/s | p50 ms "
              "| p99 ms | CPU us/delivery | gateway CPU | tool CPU | RSS MiB | conns accepted "
              "| create s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for sc in args.scenarios:
        for v in args.variants:
            runs = results.get((sc, v), [])
            if not runs:
                continue
            sat = med(runs, "saturation")
            over = med(runs, "overload_rate")
            at = steps_at(runs, max((t for t in args.targets if t <= (sat or 0)),
                                    default=args.targets[0]))
            lines.append(
                f"| {sc} | {v} | {fmt(sat, 0)} | {fmt(over, 0) if over else f'>= {t_max:,}'} "
                f"| {fmt(med(at, 'p50_ms'), 1)} | {fmt(med(at, 'p99_ms'), 1)} "
                f"| {fmt(med(at, 'cpu_us_per_delivery'), 1)} | {fmt(med(at, 'gateway_cpu_util'))} "
                f"| {fmt(med(at, 'tool_cpu_util'))} | {fmt(med(at, 'rss_mib'), 0)} | {fmt(med(at, 'sink_accepted'), 0)} "
                f"| {fmt(med(runs, 'create_s'), 1)} |")
    lines += ["", "## Every step (medians over the runs that reached it)", "",
              "| scenario | variant | offered/s | runs | passed | delivered | deliveries/s while "
              "publishing | p50 ms | p99 ms | CPU us/delivery | gateway CPU | tool CPU | conns accepted "
              "| black-hole attempts/s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for sc in args.scenarios:
        for v in args.variants:
            runs = results.get((sc, v), [])
            for t in args.targets:
                st = steps_at(runs, t)
                if not st:
                    continue
                bh = [s["blackhole_requests"] / (args.duration + args.grace) for s in st
                      if s["blackhole_requests"] is not None]
                lines.append(
                    f"| {sc} | {v} | {t:,} | {len(st)} | {sum(s['pass'] for s in st)} "
                    f"| {fmt(med(st, 'delivered_frac') * 100, 1)}% | {fmt(med(st, 'window_rate'), 0)} "
                    f"| {fmt(med(st, 'p50_ms'), 1)} | {fmt(med(st, 'p99_ms'), 1)} "
                    f"| {fmt(med(st, 'cpu_us_per_delivery'), 1)} "
                    f"| {fmt(med(st, 'gateway_cpu_util'))} | {fmt(med(st, 'tool_cpu_util'))} "
                    f"| {fmt(med(st, 'sink_accepted'), 0)} "
                    f"| {fmt(statistics.median(bh), 0) if bh else 'n/a'} |")
    lines += ["", "## Targets", ""]
    for sc in args.scenarios:
        if "clean" not in args.variants:
            break
        sat = med(results.get((sc, "clean"), []), "saturation")
        if sat is not None:
            lines.append(f"- {sc}: saturation {sat:,.0f} healthy deliveries/s (target >= 20,000 "
                         f"per shard): {'met' if sat >= 20000 else 'missed'}")
    for sc in args.scenarios:
        clean, dead = results.get((sc, "clean"), []), results.get((sc, "dead"), [])
        if not clean or not dead:
            continue
        common = [t for t in args.targets if steps_at(clean, t) and steps_at(dead, t)]
        if not common:
            continue
        t = max(common)
        c, d = med(steps_at(clean, t), "window_rate"), med(steps_at(dead, t), "window_rate")
        sc_, sd = med(clean, "saturation"), med(dead, "saturation")
        ratio = d / c if c else None
        lines.append(
            f"- {sc}, 10% dead: healthy deliveries/s at {t:,} offered: {fmt(d, 0)} vs "
            f"{fmt(c, 0)} clean = {fmt(ratio, 3)} (target >= 0.9: "
            f"{'met' if ratio and ratio >= 0.9 else 'missed'}); saturation {fmt(sd, 0)} vs "
            f"{fmt(sc_, 0)}")
    if disturbed:
        lines += ["", f"Disturbed runs (redone, not counted): {', '.join(disturbed)}"]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--bin", default="target/release/sluicegate")
    ap.add_argument("--loadtest", default="target/release/loadtest")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--grace", type=float, default=2.0)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--variants", default="clean,dead")
    ap.add_argument("--targets", default="5000,10000,20000,40000")
    ap.add_argument("--p99-limit-ms", type=float, default=1000.0)
    ap.add_argument("--storage", choices=["memory", "durable"], default="memory")
    ap.add_argument("--max-idle", type=int, default=10000,
                    help="idle keep-alive connections kept per origin (>= subscriptions: every "
                         "delivery can find a kept connection)")
    ap.add_argument("--timeout-ms", type=int, default=1000)
    ap.add_argument("--dead-kind", choices=["blackhole", "refused"], default="blackhole")
    ap.add_argument("--keep-going", action="store_true", help="do not stop at a failing step")
    ap.add_argument("--keep-logs", action="store_true", help="copy every gateway log to raw/")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--gate", default=None)
    args = ap.parse_args()
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.variants = [v for v in args.variants.split(",") if v]
    args.targets = sorted(int(t) for t in args.targets.split(","))
    args.idle_line = idle_key(args.bin, args.max_idle)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.makedirs(os.path.join(args.out, "raw"), exist_ok=True)
    results, disturbed, n = {}, [], 0
    for sc in args.scenarios:
        subs = int(sc.split("x")[0])
        for rep in range(args.reps):
            # One subscription cannot be 10% dead.
            for v in [v for v in args.variants if v == "clean" or subs >= 10]:
                for attempt in range(4):
                    n += 1
                    tag = f"{sc}-{v}-rep{rep}-{n}"
                    log(f"{sc} {v} rep {rep} ...")
                    with Gate(args.gate) as gate:
                        r = run_one(args, sc, v, tag)
                    r["rep"], r["attempt"], r["disturbed"] = rep, attempt, gate.disturbed
                    with open(os.path.join(args.out, "raw", tag + ".json"), "w") as f:
                        json.dump(r, f, indent=1)
                    log(f"{sc} {v} rep {rep}: saturation {r['saturation']:,} overload "
                        f"{fmt(r['overload_rate'], 0)} (create {r['create_s']:.1f} s, "
                        f"load {r['load_before']:.2f}){' DISTURBED' if gate.disturbed else ''}")
                    if gate.disturbed:
                        disturbed.append(tag)
                        continue
                    results.setdefault((sc, v), []).append(r)
                    break
    text = report(args, results, disturbed)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    summary = {"meta": {k: getattr(args, k) for k in
                        ("bin", "reps", "duration", "warmup", "grace", "scenarios", "variants",
                         "targets", "p99_limit_ms", "storage", "max_idle", "idle_line",
                         "timeout_ms", "dead_kind")} | {"disturbed": disturbed},
               "runs": [{**r, "steps": [{k: v for k, v in s.items()
                                         if k not in ("sink", "blackhole", "publisher")}
                                        for s in r["steps"]]}
                        for rs in results.values() for r in rs]}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(text)


if __name__ == "__main__":
    main()
