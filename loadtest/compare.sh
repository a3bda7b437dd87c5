#!/usr/bin/env bash
# Side-by-side load test of Sluicegate, Nchan and Pushpin on this machine (loopback only), with
# SSE subscribers and with WebSocket subscribers (the `-ws` servers: the fan-out sweeps, the fixed
# loads and the idle hold; Pushpin's through WebSocket-over-HTTP to the same GRIP origin).
# Installs the peers and matplotlib if missing, builds the gateway and the load tool, runs every
# scenario (compare.py) and draws the plots (plot.py). Usage: loadtest/compare.sh [--quick]
# [--reps N] [--servers sluicegate,nchan,pushpin,sluicegate-ws,nchan-ws,pushpin-ws
# (also sluicegate-ws-raw)] [--perf] [--probes]
# [--only sweep-100,sweep-1000,sweep-5000,sweep-10000,fixed,fixed-10k,fixed-100,idle,slow]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nginx >/dev/null || [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ] \
    || ! command -v pushpin >/dev/null || ! command -v zurl >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-nchan pushpin zurl
fi
# The packaged services are not what we measure; the script starts its own instances.
for svc in nginx pushpin zurl; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
        echo "note: the system $svc service is running; it may compete for CPU" >&2
    fi
done
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib
if [[ " $* " == *" --perf "* || " $* " == *" --probes "* ]] && ! command -v perf >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf
fi
# 10k subscribers need 10k+ descriptors in the load tool and the servers (compare.py raises each
# child's soft limit to the hard one); try to lift a low hard limit (works as root).
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 11000 ]; then
    ulimit -Hn 20000 2>/dev/null \
        || echo "note: hard open-file limit $(ulimit -Hn); 10k subscribers need more than 10k" >&2
fi
cargo build --release -p loadtest -p sluicegate
out="results/compare-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out/bin"
target="${CARGO_TARGET_DIR:-target}"
cp "$target/release/sluicegate" "$target/release/loadtest" "$out/bin/"
COMPARE_BIN_DIR="$PWD/$out/bin" python3 loadtest/compare.py --out "$out" "$@"
python3 loadtest/plot.py "$out"
ln -sfn "$(basename "$out")" results/latest
echo "results: $out (results.md, *.png, raw/)"
