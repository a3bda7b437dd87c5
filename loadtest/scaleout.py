#!/usr/bin/env python3
"""Scale-out on one machine: SSE fan-out through three gateway instances sharing a broker,
against one instance carrying the same load (issue #13, "Scale-out, tested").

A functional figure, not a capacity one: this machine has 2 CPUs, so the three instances share
the cores one instance had (by default every gateway is pinned to CPU 0, the load tool and the
broker to CPU 1; the broker's CPU is reported). What it shows is that the load spread
over several instances is delivered completely and what the spreading costs: each instance
reads every partition from the broker and frames every event itself, so the broker serves N
readers and the gateways together do N times the per-event work, while each instance fans out
to a third of the subscribers.

Variants, per repetition in rotating order (a slow spell of the machine hits both alike):
  1x   one instance (`--shards 1`), every subscriber and every publish on it;
  3x   three instances (`--instances`), subscribers spread round robin over them (subscriber i
       on instance i mod 3) and publishes too (loadtest's publisher connection j on instance
       j mod 3, events handed to the connections in turn).
Every run starts fresh gateways on a fresh topic with --partitions partitions (Kafka: created
with kafka-python before the gateways start, read from `latest`); the load is
`loadtest --subscribers S --rate R` (one topic, 100 B events, open loop; latency is from each
event's scheduled publish time to its receipt, so it includes the produce, the broker, the
gateway's fetch and the fan-out). Tables report medians of the repetitions.

Brokers (--broker): `kafka` (tansu) or `redis` (the Redis broker mode, `[redis] mode =
"broker"` with url, topics and partitions). The broker section of the gateways' config is the
only difference between the two; the Redis mode needs a gateway that has it. By default the
script starts a broker of its own (tansu on sqlite, or redis-server without persistence) on a
free port pinned to --broker-cpu (1, beside the load tool), so the gateways' CPU holds only
gateways and the shared test services are left alone; --external-broker uses --bootstrap /
--redis-url instead (default $SLUICEGATE_TEST_KAFKA / $SLUICEGATE_TEST_REDIS_URL or what
tests/services.sh wrote in --services-dir). With tansu, `kafka.fetch_max_wait_ms` is 10
(--fetch-max-wait-ms): tansu holds every fetch that long even when records wait (README).

Quiet machine: with --gate FILE every run waits until FILE exists and a run during which it
vanished is redone (at most 3 times); so is a run during which the gateways' CPUs spent more than
--max-other (0.2) of their time on anything but the gateways (/proc/stat busy time less
softirq, where the load's own loopback traffic lands, less the gateways' CPU time, and less the
broker's when it is external and unpinned). Each run records that fraction and the 1-minute
load average before it.

Writes OUT/results.md, OUT/summary.json, OUT/raw/ (every loadtest JSON, gateway logs of failed
runs). OUT defaults to loadtest/results/<date>-scaleout (-redis for the Redis broker).
`--rerender` rewrites results.md from summary.json.

Usage: loadtest/scaleout.py [--out DIR] [--broker kafka|redis] [--bin target/release/sluicegate]
       [--loadtest target/release/loadtest] [--reps 3] [--subscribers 1000] [--rate 50]
       [--step-secs 10] [--instances 3] [--partitions 3] [--gateway-cpus 0] [--tool-cpu 1]
       [--variants 1x,3x] [--gate /tmp/measure-go]
"""
import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durability import Gate  # noqa: E402
from variants import (cpu_busy, cpu_s, fanout_cmd, free_port, gateway_cmd, git_commit,  # noqa: E402
                      log, med, metrics, raise_nofile, rerender, save_results, stop,
                      stop_gateways, wait_listening, wait_ready)
from variants import fmt_cell as fmt  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def services_env(services_dir):
    """KEY=VALUE lines tests/services.sh wrote (the broker addresses), {} when absent."""
    out = {}
    path = os.path.join(services_dir, "env")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.strip().split("=", 1)
                    out[k] = v
    return out


def start_own_broker(args):
    """A broker of this script's own, pinned to --broker-cpu (so the gateways' CPU holds only
    gateways, and the shared test services are not loaded): tansu on sqlite, or a Redis without
    persistence, in a scratch directory on a free port. Sets --bootstrap / --redis-url."""
    port = free_port()
    work = os.path.join(args.work, "broker")
    os.makedirs(work, exist_ok=True)
    out = open(os.path.join(work, "broker.log"), "ab")
    if args.broker == "kafka":
        url = f"tcp://127.0.0.1:{port}"
        cmd = ["taskset", "-c", args.broker_cpu, "tansu", "broker", "--listener-url", url,
               "--advertised-listener-url", url, "--storage-engine", "sqlite://tansu.db"]
        args.bootstrap = f"127.0.0.1:{port}"
    else:
        cmd = ["taskset", "-c", args.broker_cpu, "redis-server", "--bind", "127.0.0.1",
               "--port", str(port), "--save", "", "--appendonly", "no"]
        args.redis_url = f"redis://127.0.0.1:{port}"
    proc = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    wait_listening(proc, port, cmd[3], f"{work}/broker.log")
    return proc


def broker_pid(args):
    """The broker process whose CPU is reported: our own, else the services' by pidfile."""
    if args.own_broker_proc is not None:
        return args.own_broker_proc.pid
    name = "tansu.pid" if args.broker == "kafka" else "redis.pid"
    path = os.path.join(args.services_dir, name)
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        return pid if cpu_s(pid) is not None else None
    except (OSError, ValueError):
        return None


def toml_str(s):
    return json.dumps(s)


def broker_section(args, topic):
    """The gateway config's broker part: the only thing that differs between the brokers."""
    if args.broker == "kafka":
        return (f"[kafka]\nbootstrap = [{toml_str(args.bootstrap)}]\n"
                f"topics = [{toml_str(topic)}]\nstart = \"latest\"\n"
                f"fetch_max_wait_ms = {args.fetch_max_wait_ms}\n"
                # The gateway's webhook state topic is loaded at every start; one of this
                # script's own keeps it apart from the tests' default one.
                f"\n[webhooks]\nkafka_state_topic = \"lt-scaleout-state\"\n")
    return (f"[redis]\nurl = {toml_str(args.redis_url)}\nmode = \"broker\"\n"
            f"topics = [{toml_str(topic)}]\npartitions = {args.partitions}\n")


def create_topic(args, topic):
    """Kafka: the topic with --partitions partitions (kafka-python, as the tests do). In Redis
    broker mode each gateway makes the streams it reads at start (XGROUP CREATE MKSTREAM)."""
    if args.broker != "kafka":
        return
    script = ("import sys\nfrom kafka import KafkaAdminClient\nfrom kafka.admin import NewTopic\n"
              "KafkaAdminClient(bootstrap_servers=sys.argv[1]).create_topics("
              "[NewTopic(sys.argv[2], int(sys.argv[3]), 1)])\n")
    subprocess.run(["timeout", "60", "python3", "-c", script, args.bootstrap, topic,
                    str(args.partitions)], check=True, capture_output=True)


def start_instances(args, n, topic, tag):
    """`n` gateways from one config file (each in its own working directory, so its own data
    directory), pinned round robin over --gateway-cpus; waits until every one is ready."""
    raw = os.path.join(args.out, "raw")
    work = os.path.join(args.work, tag)
    os.makedirs(work, exist_ok=True)
    cfg = os.path.join(work, "gateway.toml")
    with open(cfg, "w") as f:
        f.write(broker_section(args, topic))
    cpus = args.gateway_cpus.split(",")
    procs = []
    try:
        for i in range(n):
            port = free_port()
            cwd = os.path.join(work, f"instance{i}")
            os.makedirs(cwd, exist_ok=True)
            cpu = cpus[i % len(cpus)]
            cmd = gateway_cmd(args.bin, cfg, port, cpu)
            logfile = os.path.join(raw, f"{tag}.instance{i}.log")
            with open(logfile, "ab") as out:
                p = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
            procs.append({"proc": p, "port": port, "cmd": cmd, "log": logfile, "cpu": cpu})
        for g in procs:
            wait_ready(g["port"], g["proc"])
    except Exception:
        for g in procs:
            stop(g["proc"])
        raise
    return procs


def run_one(args, variant, tag):
    n = 1 if variant == "1x" else args.instances
    topic_prefix = f"lt-scaleout-{tag}-"
    topic = topic_prefix + "0"  # loadtest --topics 1 names its topic PREFIX0
    create_topic(args, topic)
    gws = start_instances(args, n, topic, tag)
    addrs = ",".join(f"127.0.0.1:{g['port']}" for g in gws)
    ok, rep, out = False, None, None
    bpid = broker_pid(args)
    try:
        m0 = [metrics(g["port"]) for g in gws]
        b0, g0 = cpu_s(bpid) if bpid else None, [cpu_s(g["proc"].pid) for g in gws]
        lt = fanout_cmd(args, addrs, topic_prefix, [g["proc"].pid for g in gws])
        wall0, busy0 = time.time(), cpu_busy()
        out = subprocess.run(lt, capture_output=True, text=True,
                             timeout=args.step_secs + args.grace_secs + 180)
        wall, busy1 = time.time() - wall0, cpu_busy()
        if out.returncode not in (0, 1):
            raise RuntimeError(f"loadtest failed ({out.returncode}): {out.stderr[-800:]}")
        rep = json.loads(out.stdout)
        b1, g1 = cpu_s(bpid) if bpid else None, [cpu_s(g["proc"].pid) for g in gws]
        m1 = [metrics(g["port"]) for g in gws]
        with open(os.path.join(args.out, "raw", tag + ".loadtest.json"), "w") as f:
            json.dump(rep, f, indent=1)
        ok = True
    finally:
        codes = stop_gateways(gws, ok, out)
    step = rep["steps"][0]
    lat = step["latency"]
    # How busy the gateways' CPUs were with anything but the gateways and the broker (another
    # process on this shared machine): a disturbed run is redone. An external broker is not
    # pinned, so its CPU time is taken off as if it all ran there (this may under-count).
    cpus = sorted(set(args.gateway_cpus.split(",")))
    broker_run = (b1 - b0) if bpid and b1 is not None and b0 is not None else None
    other_busy = sum(busy1.get("cpu" + c, 0) - busy0.get("cpu" + c, 0) for c in cpus)
    other_busy -= sum(b - a for a, b in zip(g0, g1))
    if args.external_broker:
        other_busy -= broker_run or 0
    other = max(other_busy, 0) / wall / len(cpus)

    def delta(name):
        return sum(b.get(name, 0) - a.get(name, 0) for a, b in zip(m0, m1))

    return {
        "variant": variant, "tag": tag, "instances": n, "topic": topic,
        "gateway_cmds": [g["cmd"] for g in gws], "server_exits": codes,
        "connected": rep["connected"], "streaming_per_instance": rep.get("streaming_per_addr"),
        "deliveries_per_s": step["deliveries_per_s"], "p50_ms": lat["p50_ms"],
        "p99_ms": lat["p99_ms"], "p999_ms": lat.get("p999_ms"), "max_ms": lat["max_ms"],
        "published": step["published"], "publish_errors": step["publish_errors"],
        "expected": step["expected"], "received": step["received"], "lost": step["lost"],
        "duplicates": step["duplicates"], "send_lag_p99_ms": step["send_lag_p99_ms"],
        "gateway_cpu_s": step["server_cpu_s"],
        "deliveries_per_gateway_core_s": step["deliveries_per_core_s"],
        "gateway_cpu_run_s": [b - a for a, b in zip(g0, g1)],
        "broker_cpu_run_s": broker_run,
        "run_wall_s": wall, "gateway_cpus_other": other, "tool_cpu_util": step["tool_cpu_util"],
        "gateway_deliveries_total": delta("sluicegate_deliveries_total"),
        "gateway_events_published_total": delta("sluicegate_events_published_total"),
    }


def report(meta, runs):
    variants = [v for v in meta["variants"] if any(r["variant"] == v for r in runs)]
    by = {v: [r for r in runs if r["variant"] == v] for v in variants}
    target = meta["subscribers"] * meta["rate"]
    lines = [
        f"# Scale-out: {meta['instances']} instances vs 1 ({meta['broker']})", "",
        f"{meta['subscribers']} SSE subscribers x {meta['rate']} events/s (target "
        f"{target:,.0f} deliveries/s), one topic with {meta['partitions']} partitions, "
        f"{meta['step_secs']} s open loop per run, medians of {meta['reps']} repetitions. "
        f"Gateways pinned to CPU {meta['gateway_cpus']} (`--shards 1` each), load tool on CPU "
        f"{meta['tool_cpu']}, broker "
        f"{'external, unpinned' if meta.get('external_broker') else 'on CPU ' + meta['broker_cpu']}"
        + (f", kafka.fetch_max_wait_ms {meta['fetch_max_wait_ms']}. " if meta["broker"] == "kafka"
           else " (redis-server, no persistence). ") +
        f"**A functional figure on a 2-CPU machine**: the "
        f"instances share the cores one instance had.", "",
        "| | " + " | ".join(variants) + " |",
        "|---|" + "---|" * len(variants),
    ]
    rows = [
        ("deliveries/s", "deliveries_per_s", 0),
        ("publish-to-receipt p50 ms", "p50_ms", 2),
        ("publish-to-receipt p99 ms", "p99_ms", 2),
        ("max ms", "max_ms", 1),
        ("lost", "lost", 0), ("duplicates", "duplicates", 0),
        ("publish errors", "publish_errors", 0),
        ("gateway CPU s (all instances, the step)", "gateway_cpu_s", 2),
        ("deliveries per gateway core-second", "deliveries_per_gateway_core_s", 0),
        ("broker CPU s (the run)", "broker_cpu_run_s", 2),
        ("gateway deliveries (sum of /metrics)", "gateway_deliveries_total", 0),
    ]
    for name, key, nd in rows:
        lines.append(f"| {name} | " + " | ".join(fmt(med(by[v], key), nd) for v in variants)
                     + " |")
    lines += ["", "## Every run", "",
              "| run | variant | connected (per instance) | deliveries/s | p50 | p99 | max | "
              "lost | dups | gateway CPU s | broker CPU s | others on gateway CPUs | "
              "load before |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(
            f"| {r['tag']} | {r['variant']} | {r['connected']} "
            f"({'/'.join(str(x) for x in r.get('streaming_per_instance') or [])}) | "
            f"{fmt(r['deliveries_per_s'], 0)} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | "
            f"{fmt(r['max_ms'], 1)} | {r['lost']} | {r['duplicates']} | "
            f"{fmt(r['gateway_cpu_s'])} | {fmt(r['broker_cpu_run_s'])} | "
            f"{fmt(r.get('gateway_cpus_other'))} | {fmt(r.get('load_before'))} |")
    if meta.get("disturbed"):
        lines += ["", f"Disturbed runs (redone, not counted): {', '.join(meta['disturbed'])}"]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--broker", choices=["kafka", "redis"], default="kafka")
    ap.add_argument("--bootstrap", default=None, help="Kafka host:port (default: services env)")
    ap.add_argument("--redis-url", default=None, help="redis://host:port (default: services env)")
    ap.add_argument("--services-dir", default=os.environ.get(
        "SLUICEGATE_SERVICES_DIR", os.path.join(REPO, "target", "test-services")),
        help="where tests/services.sh keeps its env and pidfiles")
    ap.add_argument("--bin", default="target/release/sluicegate")
    ap.add_argument("--loadtest", default="target/release/loadtest")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--step-secs", type=float, default=10)
    ap.add_argument("--grace-secs", type=float, default=3)
    ap.add_argument("--p99-limit-ms", type=float, default=1000)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--fetch-max-wait-ms", type=int, default=10,
                    help="kafka.fetch_max_wait_ms: tansu holds every fetch that long even with "
                    "records waiting (README), so it bounds the latency from below")
    ap.add_argument("--gateway-cpus", default="0", help="CPUs the instances are pinned to, "
                    "round robin (comma list)")
    ap.add_argument("--tool-cpu", default="1")
    ap.add_argument("--external-broker", action="store_true",
                    help="use --bootstrap / --redis-url (default: the test services') instead "
                    "of starting a broker of our own pinned to --broker-cpu")
    ap.add_argument("--broker-cpu", default="1")
    ap.add_argument("--variants", default="1x,3x")
    ap.add_argument("--work", default=None, help="scratch root for configs and data dirs")
    ap.add_argument("--gate", default=None)
    ap.add_argument("--max-other", type=float, default=0.2,
                    help="redo a run whose gateway CPUs spent more than this fraction of the "
                    "time on other processes")
    ap.add_argument("--rerender", action="store_true")
    args = ap.parse_args()
    # SIGTERM unwinds like an exception, so the gateways and the broker are stopped on the way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = {**services_env(args.services_dir), **os.environ}
    args.bootstrap = args.bootstrap or env.get("SLUICEGATE_TEST_KAFKA")
    args.redis_url = args.redis_url or env.get("SLUICEGATE_TEST_REDIS_URL")
    if args.out is None:
        suffix = "" if args.broker == "kafka" else "-" + args.broker
        args.out = os.path.join(REPO, "loadtest", "results",
                                f"{datetime.date.today().isoformat()}-scaleout{suffix}")
    if args.rerender:
        rerender(args.out, report)
        return
    args.work = args.work or os.path.join("/tmp", f"scaleout-{os.getpid()}")
    args.own_broker_proc = None
    if not args.external_broker:
        args.own_broker_proc = start_own_broker(args)
    if args.broker == "kafka" and not args.bootstrap:
        sys.exit("no Kafka: --bootstrap HOST:PORT or tests/services.sh start")
    if args.broker == "redis" and not args.redis_url:
        sys.exit("no Redis: --redis-url redis://HOST:PORT or tests/services.sh start")
    args.variants = [v for v in args.variants.split(",") if v]
    raise_nofile()
    os.makedirs(os.path.join(args.out, "raw"), exist_ok=True)
    meta = {k: getattr(args, k) for k in
            ("broker", "bin", "loadtest", "reps", "subscribers", "rate", "step_secs",
             "grace_secs", "instances", "partitions", "fetch_max_wait_ms", "gateway_cpus",
             "tool_cpu", "variants", "external_broker", "broker_cpu", "max_other")}
    meta["bootstrap" if args.broker == "kafka" else "redis_url"] = (
        args.bootstrap if args.broker == "kafka" else args.redis_url)
    meta["commit"] = git_commit(REPO)
    try:
        runs, disturbed = measure(args)
    finally:
        if args.own_broker_proc is not None:
            stop(args.own_broker_proc)
    meta["disturbed"] = disturbed
    save_results(args.out, report(meta, runs), {"meta": meta, "runs": runs})


def measure(args):
    """Every repetition of every variant, the variants' order rotating per repetition."""
    runs, disturbed, n = [], [], 0
    for rep in range(args.reps):
        order = args.variants[rep % len(args.variants):] + args.variants[:rep % len(args.variants)]
        for variant in order:
            for attempt in range(4):
                n += 1
                tag = f"{variant}-rep{rep}-{n}-{int(time.time())}"
                log(f"{variant} rep {rep} ...")
                with Gate(args.gate) as gate:
                    load = os.getloadavg()[0]
                    r = run_one(args, variant, tag)
                r.update(rep=rep, attempt=attempt, load_before=load)
                log(f"{variant} rep {rep}: {r['deliveries_per_s']:,.0f} deliveries/s, p50 "
                    f"{r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} ms, lost {r['lost']}, dups "
                    f"{r['duplicates']}, connected {r['connected']} "
                    f"{r['streaming_per_instance']}, others on the gateway CPUs "
                    f"{r['gateway_cpus_other']:.2f}")
                why = "the gate vanished" if gate.disturbed else (
                    f"gateway CPUs {r['gateway_cpus_other']:.2f} busy with others"
                    if r["gateway_cpus_other"] > args.max_other else None)
                if why:
                    log(f"{tag}: redone ({why})")
                    disturbed.append(f"{tag} ({why})")
                    continue
                runs.append(r)
                break
    return runs, disturbed


if __name__ == "__main__":
    main()
