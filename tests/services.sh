#!/usr/bin/env bash
# Starts and stops the real services the integration tests talk to: a Redis server and tansu
# (an Apache-Kafka-compatible broker), both on loopback, both with their state under one dir.
#
#   tests/services.sh start   start whatever is not running yet, wait until each answers,
#                             write $STATE/env (KEY=VALUE lines for the tests)
#   tests/services.sh stop    stop both by pidfile
#   tests/services.sh env     print $STATE/env
#
# Settings (environment): SLUICEGATE_SERVICES_DIR (default $REPO/target/test-services),
# SLUICEGATE_REDIS_PORT (default 16379), SLUICEGATE_KAFKA_PORT (default 19092). When the default
# port is taken by something else, the next free one is used and written to $STATE/env.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${SLUICEGATE_SERVICES_DIR:-$REPO/target/test-services}
REDIS_PORT_DEFAULT=${SLUICEGATE_REDIS_PORT:-16379}
KAFKA_PORT_DEFAULT=${SLUICEGATE_KAFKA_PORT:-19092}
# How long a service may take to answer after it was started.
WAIT_SECONDS=${SLUICEGATE_SERVICES_WAIT:-30}

log() { printf 'services: %s\n' "$*" >&2; }
die() {
    printf 'services: ERROR: %s\n' "$*" >&2
    exit 1
}

# True when the pid in pidfile $1 names a live process.
alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(cat "$1")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# True when nothing can be bound on 127.0.0.1:$1 (something listens there already).
port_busy() {
    ! python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
PY
}

# Prints the first free port at or above $1.
free_port_from() {
    local p=$1 tries=0
    while port_busy "$p"; do
        p=$((p + 1))
        tries=$((tries + 1))
        ((tries < 50)) || die "no free port in $1..$p"
    done
    echo "$p"
}

# Sends a Kafka ApiVersions v0 request to 127.0.0.1:$1 and succeeds when the answer carries the
# same correlation id and error code 0: the broker is up and speaks the protocol.
kafka_answers() {
    python3 - "$1" <<'PY' 2>/dev/null
import socket, struct, sys
client = b"services.sh"
body = struct.pack(">hhih", 18, 0, 4242, len(client)) + client
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
    s.settimeout(2)
    s.sendall(struct.pack(">i", len(body)) + body)
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(1)
        buf += chunk
corr, err = struct.unpack(">ih", buf[4:10])
sys.exit(0 if corr == 4242 and err == 0 else 1)
PY
}

redis_answers() {
    [[ $(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
}

# Polls "$@" (a command) until it succeeds or WAIT_SECONDS pass.
wait_for() {
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

start_redis() {
    local port
    if alive "$STATE/redis.pid"; then
        port=$(cat "$STATE/redis.port")
        log "redis already running (pid $(cat "$STATE/redis.pid"), port $port)"
    else
        command -v redis-server >/dev/null || die "redis-server not installed (apt-get install redis-server)"
        port=$(free_port_from "$REDIS_PORT_DEFAULT")
        rm -f "$STATE/redis.pid"
        # No RDB snapshots, no AOF: tests own their data and a restart starts empty.
        redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
            --daemonize yes --pidfile "$STATE/redis.pid" --logfile "$STATE/redis.log" \
            --dir "$STATE" >/dev/null || die "redis-server failed to start; see $STATE/redis.log"
        echo "$port" >"$STATE/redis.port"
    fi
    wait_for redis_answers "$port" || {
        tail -n 20 "$STATE/redis.log" >&2 || true
        die "redis on port $port did not answer PING within ${WAIT_SECONDS}s"
    }
    log "redis up on 127.0.0.1:$port"
}

start_tansu() {
    local port pid
    if alive "$STATE/tansu.pid"; then
        port=$(cat "$STATE/tansu.port")
        log "tansu already running (pid $(cat "$STATE/tansu.pid"), port $port)"
    else
        command -v tansu >/dev/null || die "tansu not installed (cargo install tansu --version 0.6.0 --features dynostore,libsql)"
        port=$(free_port_from "$KAFKA_PORT_DEFAULT")
        rm -f "$STATE/tansu.pid"
        # Runs from $STATE so sqlite://tansu.db lands there. `exec` keeps the pid of the
        # background subshell, so the pidfile names tansu itself.
        (
            cd "$STATE"
            exec tansu broker \
                --listener-url "tcp://127.0.0.1:$port" \
                --advertised-listener-url "tcp://127.0.0.1:$port" \
                --storage-engine "sqlite://tansu.db" \
                </dev/null >>"$STATE/tansu.log" 2>&1
        ) &
        pid=$!
        echo "$pid" >"$STATE/tansu.pid"
        echo "$port" >"$STATE/tansu.port"
    fi
    wait_for kafka_answers "$port" || {
        tail -n 20 "$STATE/tansu.log" >&2 || true
        die "tansu on port $port did not answer ApiVersions within ${WAIT_SECONDS}s"
    }
    log "tansu up on 127.0.0.1:$port"
}

write_env() {
    {
        echo "SLUICEGATE_TEST_REDIS_URL=redis://127.0.0.1:$(cat "$STATE/redis.port")"
        echo "SLUICEGATE_TEST_KAFKA=127.0.0.1:$(cat "$STATE/tansu.port")"
    } >"$STATE/env.tmp"
    mv "$STATE/env.tmp" "$STATE/env"
}

# Stops the process named by pidfile $1: TERM, up to 10 s to go, then KILL.
stop_one() {
    local name=$1 pidfile=$2 pid i
    if ! alive "$pidfile"; then
        rm -f "$pidfile"
        log "$name not running"
        return 0
    fi
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) ignored SIGTERM; killing"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    log "$name stopped"
}

case ${1:-} in
start)
    mkdir -p "$STATE"
    rm -f "$STATE/env"
    start_redis
    start_tansu
    write_env
    log "env written to $STATE/env"
    ;;
stop)
    stop_one tansu "$STATE/tansu.pid"
    stop_one redis "$STATE/redis.pid"
    rm -f "$STATE/env"
    ;;
env)
    [[ -s $STATE/env ]] || die "no $STATE/env: run '$0 start' first"
    cat "$STATE/env"
    ;;
*)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
