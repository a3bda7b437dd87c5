"""Side-by-side comparison driver: starts Sluicegate, Nchan (nginx) and Pushpin in turn on
loopback, pinned to CPU 0, runs the load tool pinned to CPU 1 over the scenarios, three
repetitions each, and writes raw JSON, summary.json and results.md under the results folder.
Each server is measured with SSE subscribers (`sluicegate`, `nchan`, `pushpin`) and with
WebSocket subscribers (`sluicegate-ws`, `nchan-ws`, `pushpin-ws`; `sluicegate-ws-raw` is
Sluicegate's raw mode, the data alone in each frame as Nchan and Pushpin send it).
Each run also records how busy the machine was (load average before it, CPU used by everything
else during it), since the machine is shared. Run through compare.sh (which installs what is
missing and builds first)."""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "loadtest", "peers")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
# compare.sh copies the freshly built binaries here, so a concurrent build into a shared target
# directory cannot swap them mid-run.
BIN = os.environ.get("COMPARE_BIN_DIR", os.path.join(TARGET, "release"))
LOADTEST = os.path.join(BIN, "loadtest")
SLUICEGATE = os.path.join(BIN, "sluicegate")
SERVERS = ["sluicegate", "nchan", "pushpin", "sluicegate-ws", "nchan-ws", "pushpin-ws"]
# `--servers` entries: a server, optionally with the subscribers' transport after a dash.
TRANSPORTS = {"": "sse", "-ws": "ws", "-ws-raw": "ws-raw"}
# WebSocket subscribers skip the slow-consumer scenario: a WebSocket client that stops reading
# also stops answering pings, so it would measure each server's pong timeout as well.
WS_SKIP = {"slow"}
HEARTBEAT_S = 5  # SSE heartbeat comments and WebSocket pings alike
# Each server gets its own ports (subscribe = base, publish = base + 1, GRIP origin = base + 2,
# zurl = base + 10..12): connections a server closed first sit in TIME_WAIT on its port for
# 60 s, and after Sluicegate's (glommio binds with SO_REUSEPORT) nginx could not bind the port
# ("Address already in use", seen after a run with a few thousand subscribers).
BASE_PORT = {"sluicegate": 18480, "nchan": 18500, "pushpin": 18520}


def fill(template, out, values):
    with open(os.path.join(PEERS, template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("@%s@" % k, str(v))
    with open(out, "w") as f:
        f.write(text)


def wait_port(port, timeout=15.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def split_spec(spec):
    """`nchan-ws` -> ("nchan", "ws"); `pushpin` -> ("pushpin", "sse")."""
    for suffix in sorted(TRANSPORTS, key=len, reverse=True):
        if suffix and spec.endswith(suffix):
            return spec[:-len(suffix)], TRANSPORTS[suffix]
    return spec, "sse"


class Server:
    """One server under test: its processes (started in their own session) and addresses."""

    def __init__(self, spec, tmp):
        self.spec = spec
        name, self.transport = split_spec(spec)
        self.name, self.tmp, self.procs, self.pids = name, tmp, [], []
        self.port = BASE_PORT[name]
        self.sub_addr = "127.0.0.1:%d" % self.port
        self.pub_addr = self.sub_addr

    def spawn(self, args, log, cpu, measured=True):
        p = subprocess.Popen(["taskset", "-c", str(cpu)] + args, stdout=open(log, "w"),
                             stderr=subprocess.STDOUT, start_new_session=True,
                             preexec_fn=raise_nofile)
        self.procs.append(p)
        if measured:
            self.pids.append(p.pid)
        return p

    def start(self):
        t = self.tmp
        PORT, PUB_PORT, ORIGIN_PORT = self.port, self.port + 1, self.port + 2
        if os.path.isdir(t):
            shutil.rmtree(t)
        os.makedirs(t)
        if self.name == "sluicegate":
            self.spawn([SLUICEGATE, "--listen", self.sub_addr, "--shards", "1", "--cpus", "0",
                        "--set", "sse.heartbeat_ms=%d" % (HEARTBEAT_S * 1000),
                        "--set", "ws.ping_interval_ms=%d" % (HEARTBEAT_S * 1000),
                        "--set", "log.level=warn",
                        # Like the peers' stores: in memory (durability has its own figures).
                        "--set", "storage.mode=memory"], os.path.join(t, "sluicegate.log"), 0)
        elif self.name == "nchan":
            for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
                os.makedirs(os.path.join(t, d))
            conf = os.path.join(t, "nginx.conf")
            fill("nginx-nchan.conf.in", conf, {"TMP": t, "PORT": PORT, "HEARTBEAT": "%ds" % HEARTBEAT_S})
            self.spawn(["nginx", "-c", conf, "-p", t], os.path.join(t, "nginx.out"), 0)
        else:
            os.makedirs(os.path.join(t, "run"))
            os.makedirs(os.path.join(t, "log"))
            os.makedirs("/var/run/zurl", exist_ok=True)
            fill("pushpin.conf.in", os.path.join(t, "pushpin.conf"), {
                "TMP": t, "PORT": PORT, "PUBPORT": PUB_PORT, "ORIGIN": ORIGIN_PORT,
                "ZPORT1": PORT + 10, "ZPORT2": PORT + 11, "ZPORT3": PORT + 12})
            with open(os.path.join(t, "routes"), "w") as f:
                # over_http: WebSocket clients reach the origin as WebSocket-over-HTTP.
                f.write("* 127.0.0.1:%d,over_http\n" % ORIGIN_PORT)
            fill("zurl.conf.in", os.path.join(t, "zurl.conf"), {})
            # The origin is test scaffolding (it only answers the opening request of each
            # subscriber), so it runs beside the load tool and is not counted.
            self.spawn([sys.executable, os.path.join(PEERS, "grip_origin.py"), str(ORIGIN_PORT),
                        str(HEARTBEAT_S)], os.path.join(t, "origin.log"), 1, measured=False)
            self.spawn(["zurl", "--config=" + os.path.join(t, "zurl.conf")],
                       os.path.join(t, "zurl.log"), 0)
            self.spawn(["pushpin", "--config", os.path.join(t, "pushpin.conf")],
                       os.path.join(t, "pushpin.out"), 0)
            self.pub_addr = "127.0.0.1:%d" % PUB_PORT
            if not wait_port(PUB_PORT) or not wait_port(ORIGIN_PORT):
                raise RuntimeError("pushpin did not start; see " + t)
        if not wait_port(PORT):
            raise RuntimeError("%s did not start; see %s" % (self.name, t))
        time.sleep(0.5)

    def stop(self):
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=8)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        self.procs, self.pids = [], []
        # Pushpin's runner lets its children drain for a while after SIGTERM: the next server
        # must not find the port still taken (bounded wait).
        end = time.time() + 30
        while time.time() < end and any(port_open(p) for p in (self.port, self.port + 1)):
            time.sleep(0.2)
        time.sleep(0.3)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def cpu_ticks():
    """Whole-machine clock ticks from /proc/stat: (user + nice + system, softirq, steal).
    Softirq is kept apart: loopback TCP work of the server and the tool lands there, not in
    their own process times; steal is the hypervisor's (other guests)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2], v[6], v[7]


def tree_ticks(roots):
    """CPU ticks (user + system) of `roots` and their descendants."""
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    rest = f.read().rsplit(")", 1)[1].split()
                procs[int(d)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
            except (OSError, IndexError, ValueError):
                pass
    members, i = list(roots), 0
    while i < len(members):
        members += [p for p, (pp, _) in procs.items() if pp == members[i] and p not in members]
        i += 1
    return sum(procs[p][1] for p in members if p in procs)


def loadtest(server, out_json, args, log, perf=False, perf_events=""):
    cmd = ["taskset", "-c", "1", LOADTEST, "--server", server.name, "--sub-addr", server.sub_addr,
           "--pub-addr", server.pub_addr, "--transport", server.transport, "--json", out_json,
           "--quiet"]
    for pid in server.pids:
        cmd += ["--server-pid", str(pid)]
    if server.name == "sluicegate":
        # Its own counters: SSE write syscalls vs deliveries around every step.
        cmd += ["--metrics-addr", server.sub_addr]
    if perf:
        cmd += ["--perf"]
        if perf_events and server.name == "sluicegate":
            cmd += ["--perf-events", perf_events]
    cmd += [str(a) for a in args]
    # The machine is shared: note how loaded it was before the run and how much CPU everything
    # other than the server and the tool took during it (the noise in these figures).
    load_before, cpu0, srv0, t0 = loadavg(), cpu_ticks(), tree_ticks(server.pids), time.time()
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=240,
                            preexec_fn=raise_nofile).returncode
    if rc != 0 or not os.path.exists(out_json):
        return None
    with open(out_json) as f:
        r = json.load(f)
    hz, wall = os.sysconf("SC_CLK_TCK"), time.time() - t0
    d = [b - a for a, b in zip(cpu0, cpu_ticks())]
    other_s = (d[0] - (tree_ticks(server.pids) - srv0)) / hz - r["tool_cpu_s"]
    r["machine"] = {"loadavg_before": load_before, "wall_s": round(wall, 2),
                    "other_cpu_util": round(max(other_s, 0.0) / wall, 3),
                    "softirq_util": round(d[1] / hz / wall, 3),
                    "steal_util": round(d[2] / hz / wall, 3),
                    "started": time.strftime("%H:%M:%S", time.localtime(t0))}
    with open(out_json, "w") as f:
        json.dump(r, f, indent=1)
    return r


# Offered deliveries/s (rate x subscribers) of a sweep's first step. Pushpin starts lower: it
# does not pass the others' first step, and the sweep must find where it does.
SWEEP_START = {"pushpin": 2500}


def scenarios(quick, server=""):
    """(key, label, loadtest args) for every point; the sweep's steps are inside one run."""
    steps = ["--step-secs", 1.5 if quick else 2, "--grace-secs", 1, "--settle-secs", 0.5]
    subs = [100, 1000] if quick else [100, 1000, 5000, 10000]
    out = []
    for n in subs:
        out.append(("sweep-%d" % n, "fan-out sweep, %d subscribers" % n,
                    ["--subscribers", n, "--size", 100, "--rate", SWEEP_START.get(server, 25000) / n,
                     "--sweep", 2,
                     "--max-steps", 8] + steps))
    out.append(("fixed", "1k subscribers x 50 events/s",
                ["--subscribers", 1000, "--size", 100, "--rate", 50, "--step-secs", 5,
                 "--grace-secs", 2, "--settle-secs", 0.5]))
    # Fewer subscribers, more events each: the same 100 B events, twice the deliveries/s.
    out.append(("fixed-100", "100 subscribers x 1000 events/s",
                ["--subscribers", 100, "--size", 100, "--rate", 1000, "--step-secs", 5,
                 "--grace-secs", 2, "--settle-secs", 0.5]))
    # The large fan-out at a low rate: the same 50k offered deliveries/s as "fixed", spread as
    # one event to 10x the subscribers.
    out.append(("fixed-10k", "10k subscribers x 5 events/s",
                ["--subscribers", 2000 if quick else 10000, "--size", 100, "--rate", 5,
                 "--step-secs", 5, "--grace-secs", 2, "--settle-secs", 0.5]))
    out.append(("idle", "10k idle subscribers",
                ["--subscribers", 2000 if quick else 10000, "--rate", 0,
                 "--hold-secs", HEARTBEAT_S + 1.5, "--settle-secs", 0.5, "--connect-rate", 4000,
                 "--connect-timeout-secs", 30]))
    out.append(("slow", "1k subscribers, 10% stop reading, 100 x 4 KB events/s",
                ["--subscribers", 1000, "--slow-fraction", 0.1, "--size", 4096, "--rate", 100,
                 "--step-secs", 6, "--grace-secs", 2, "--settle-secs", 0.5]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "results",
                    datetime.datetime.now().strftime("compare-%Y%m%d-%H%M%S")))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--servers", default=",".join(SERVERS),
                    help="comma-separated: sluicegate, nchan, pushpin, each optionally with "
                         "-ws (WebSocket subscribers) or, for sluicegate, -ws-raw")
    ap.add_argument("--only", default="", help="comma-separated scenario keys")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other results already in OUT/summary.json (re-run some points)")
    ap.add_argument("--quick", action="store_true", help="smaller and shorter (a smoke run)")
    ap.add_argument("--perf", action="store_true",
                    help="count the server's syscalls and wake-ups per step with perf stat "
                         "(tracepoints; costs the server a little per syscall)")
    ap.add_argument("--probes", action="store_true",
                    help="also count Sluicegate's executor task wake-ups and polls "
                         "(uprobes: a count-only run, its latency and CPU are not comparable)")
    a = ap.parse_args()
    a.perf = a.perf or a.probes  # the probes are counted by perf stat
    a.out = os.path.abspath(a.out)
    raw = os.path.join(a.out, "raw")
    os.makedirs(raw, exist_ok=True)
    log = os.path.join(a.out, "run.log")
    started = time.time()
    results = {}
    summary_path = os.path.join(a.out, "summary.json")
    if a.merge and os.path.exists(summary_path):
        with open(summary_path) as f:
            results = json.load(f)["results"]
    fresh = set()
    perf_events = ""
    if a.perf and a.probes:
        import probes
        perf_events = probes.add(SLUICEGATE)
        print("uprobes: %s" % (perf_events or "none could be added"), flush=True)
    for name in a.servers.split(","):
        base, transport = split_spec(name)
        if base not in BASE_PORT:
            ap.error("unknown server %r" % name)
        for key, label, args in scenarios(a.quick, base):
            if a.only and key not in a.only.split(","):
                continue
            if transport != "sse" and key in WS_SKIP and not a.only:
                continue
            for rep in range(a.reps):
                srv = Server(name, os.path.join(a.out, "tmp", base))
                r = None
                try:
                    srv.start()
                    out = os.path.join(raw, "%s-%s-%d.json" % (name, key, rep))
                    r = loadtest(srv, out, args, log, a.perf, perf_events)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    print("error: %s %s: %s" % (name, key, e), flush=True)
                finally:
                    srv.stop()
                if (name, key) not in fresh:
                    results.setdefault(name, {})[key] = []
                    fresh.add((name, key))
                results[name][key].append(r)
                print("[%5.0fs] %s %s rep %d: %s" % (time.time() - started, name, key, rep + 1,
                      brief(r)), flush=True)
    if perf_events:
        probes.remove()
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "seconds": round(time.time() - started),
        "perf": a.perf,
        "probes": bool(perf_events),
        "labels": {k: l for k, l, _ in scenarios(a.quick)},
    }
    with open(summary_path, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    import report_md
    md = report_md.render(meta, results)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md)
    print(md)
    print("wrote %s in %.0f s" % (a.out, time.time() - started))


def brief(r):
    if not r:
        return "FAILED (see run.log)"
    best = r["steps"][r["best_step"]] if r.get("best_step") is not None else None
    if r["steps"] and best:
        return "best %.0f deliveries/s p99 %.2f ms (%d/%d connected)" % (
            best["deliveries_per_s"], best["latency"]["p99_ms"], r["connected"], r["subscribers"])
    if r["steps"]:
        s = r["steps"][-1]
        return "no passing step: p99 %.1f ms lost %d" % (s["latency"]["p99_ms"], s["lost"])
    return "idle: %.0f B/conn, %d/%d connected" % (r["rss_per_connection_bytes"], r["connected"],
                                                   r["subscribers"])


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return "%s, %d cores, %.0f GiB RAM, Linux %s" % (cpu, os.cpu_count(), mem, platform.release())


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
