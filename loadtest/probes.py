"""Uprobes on Sluicegate's executor (glommio's RawTask::schedule and RawTask::run), counted by
`perf stat` during each step, so executor task wake-ups and polls per delivery can be given
without a counter in the server. A uprobe traps into the kernel on every hit (~1-3 us), so a run
with them measures counts, not latency or CPU: keep it apart from the timed runs."""
import subprocess

GROUP = "probe_sluicegate"
# Mangled-name pieces of glommio::task::raw::RawTask<F,R,S>::{schedule,run}; the generic type is
# instantiated several times, and every copy gets its own probe.
KINDS = {"task_schedule": "8schedule17h", "task_run": "3run17h"}


def symbols(binary):
    out = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    found = {k: [] for k in KINDS}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 3 or "glommio4task3raw" not in parts[2] or "RawTask" not in parts[2]:
            continue
        for kind, piece in KINDS.items():
            if piece in parts[2]:
                found[kind].append(parts[2])
    return found


def remove():
    subprocess.run(["perf", "probe", "-q", "-d", GROUP + ":*"], capture_output=True)


def add(binary):
    """Adds the probes on `binary` (the exact file the server runs); returns the perf event glob
    to count, or "" when none could be added."""
    remove()
    n = 0
    for kind, syms in symbols(binary).items():
        for i, sym in enumerate(syms):
            r = subprocess.run(["perf", "probe", "-q", "-x", binary, "-a",
                                "%s:%s_%d=%s" % (GROUP, kind, i, sym)], capture_output=True)
            n += r.returncode == 0
    return GROUP + ":*" if n else ""


def per_delivery(step, kind):
    """Sum of one probe kind's counts over a step, per delivery received (None without them)."""
    counts = (step or {}).get("perf") or {}
    hits = [v for k, v in counts.items() if k.startswith("%s:%s_" % (GROUP, kind))]
    if not hits or not step.get("received"):
        return None
    return sum(hits) / step["received"]
