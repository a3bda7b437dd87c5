#!/usr/bin/env bash
# THE command that runs every test of the project (CI runs it through .ci/run):
#   1. installs what the tests use, skipping whatever is already there at the right version
#      (Debian: redis-server curl procps, systemd for systemd-analyze; cargo-fuzz; tansu 0.6.0;
#      Python kafka-python, httpx,
#      PyJWT with its crypto extra, which the policy tests mint their tokens with; websockets and
#      selenium, with Debian chromium + chromium-driver, for the WebSocket conformance and
#      browser tests), standardwebhooks (verifies the webhook signatures we send),
#   2. starts the test services (tests/services.sh) and exports their addresses,
#   3. cargo fmt --check, cargo clippy -D warnings, cargo test --workspace, tests/fuzz-smoke.sh,
#   4. stops the services (also on failure or interrupt).
# Every step runs even when an earlier one failed, so one run reports everything. Exits non-zero
# when any step failed; the last line is `run-all: N passed, M failed` (one count per step).
# Meant for a Debian bookworm machine with the Rust toolchain and Python 3 + pip, run as root.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
STATE=${SLUICEGATE_SERVICES_DIR:-$REPO/target/test-services}
export SLUICEGATE_SERVICES_DIR=$STATE
TANSU_VERSION=0.6.0
# Upper bound for the whole `cargo test` step, so a hung test cannot eat CI's time budget.
TEST_TIMEOUT=${SLUICEGATE_TEST_TIMEOUT:-1800}

passed=0
failed=0
failed_names=()
services_started=0
summary_printed=0

say() { printf '\nrun-all: === %s\n' "$*"; }

summary() {
    summary_printed=1
    if ((failed > 0)); then
        echo "run-all: failed steps: ${failed_names[*]}"
    fi
    echo "run-all: $passed passed, $failed failed"
}

cleanup() {
    local rc=$?
    if ((services_started)); then
        services_started=0
        tests/services.sh stop || true
    fi
    if ((!summary_printed)); then
        # Reached only when the script died outside a step (a bug here, or an interrupt).
        failed=$((failed + 1))
        failed_names+=("aborted")
        summary
        ((rc != 0)) || rc=1
    fi
    exit "$rc"
}
# Sends SIGTERM to $1 and all its descendants, children first (by pid, found with ps).
kill_tree() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        kill_tree "$child"
    done
    kill -TERM "$1" 2>/dev/null || true
}

# The running step's pid: an interrupt stops it instead of waiting for it to finish.
step_pid=
interrupted() {
    echo "run-all: interrupted"
    if [[ -n $step_pid ]]; then
        kill_tree "$step_pid"
        wait "$step_pid" 2>/dev/null || true
    fi
    exit "$1"
}
trap cleanup EXIT
trap 'interrupted 130' INT
trap 'interrupted 143' TERM

# step NAME CMD...: runs CMD, counts it as passed or failed, never stops the script.
# CMD runs in the background and is waited for, so that INT/TERM are handled at once.
step() {
    local name=$1 start=$SECONDS rc=0
    shift
    say "$name"
    "$@" </dev/null &
    step_pid=$!
    wait "$step_pid" || rc=$?
    step_pid=
    if ((rc == 0)); then
        passed=$((passed + 1))
        echo "run-all: --- $name ok ($((SECONDS - start))s)"
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        echo "run-all: --- $name FAILED ($((SECONDS - start))s)"
    fi
}

deb_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'
}

install_debian() {
    local missing=() p
    # chromium + chromium-driver: the browser test opens WebSockets from a real page.
    # systemd: systemd-analyze verifies the unit the gateway prints.
    for p in redis-server curl procps chromium chromium-driver systemd; do
        deb_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        echo "debian packages present"
        return 0
    fi
    echo "installing debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update || return 1
    apt-get install -y "${missing[@]}" || return 1
}

install_cargo_fuzz() {
    if cargo fuzz --version >/dev/null 2>&1; then
        echo "cargo-fuzz present: $(cargo fuzz --version)"
        return 0
    fi
    cargo install cargo-fuzz --locked || return 1
}

install_tansu() {
    local have
    have=$(tansu --version 2>/dev/null || true)
    if [[ $have == "tansu $TANSU_VERSION" ]]; then
        echo "tansu present: $have"
        return 0
    fi
    # ~10-15 minutes on 2 cores; cached in ~/.cargo/bin afterwards. The sqlite engine
    # (libsql feature) is the one the tests use; a default build has no storage engine.
    echo "building tansu $TANSU_VERSION (have: ${have:-none}); this takes a while"
    cargo install tansu --version "$TANSU_VERSION" --features dynostore,libsql --force || return 1
    [[ $(tansu --version 2>/dev/null) == "tansu $TANSU_VERSION" ]]
}

install_python() {
    local check='import kafka, httpx, jwt, cryptography, websockets, selenium, standardwebhooks, redis; from jwt.algorithms import has_crypto; assert has_crypto'
    if python3 -c "$check" 2>/dev/null; then
        echo "python packages present"
        return 0
    fi
    python3 -m pip install --quiet --root-user-action=ignore kafka-python httpx 'pyjwt[crypto]' \
        websockets selenium standardwebhooks redis || return 1
    python3 -c "$check"
}

install_deps() {
    local rc=0
    install_debian || rc=1
    install_cargo_fuzz || rc=1
    install_tansu || rc=1
    install_python || rc=1
    return "$rc"
}

stop_services() {
    services_started=0
    tests/services.sh stop
}

run_tests() {
    timeout --kill-after=30 "$TEST_TIMEOUT" cargo test --workspace --no-fail-fast
}

step deps install_deps
# From here on the EXIT trap stops the services (stopping is harmless when none run).
services_started=1
step services tests/services.sh start
if [[ -s $STATE/env ]]; then
    # Export SLUICEGATE_TEST_* for cargo test.
    set -a
    # shellcheck disable=SC1091
    . "$STATE/env"
    set +a
    env | grep '^SLUICEGATE_TEST_' | sort
fi
step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
step test run_tests
step fuzz-smoke tests/fuzz-smoke.sh

say "stopping services"
stop_services || echo "run-all: warning: stopping the services failed"
summary
((failed == 0))
