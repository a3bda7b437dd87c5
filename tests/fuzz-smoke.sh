#!/usr/bin/env bash
# Builds every cargo-fuzz target listed in fuzz/Cargo.toml and runs each briefly
# (FUZZ_SECONDS, default 10): a crash, a leak or a build failure fails this script.
# Uses `cargo +nightly fuzz` when a nightly toolchain is installed, else the stable toolchain
# with RUSTC_BOOTSTRAP=1 (sanitizer flags are nightly-only).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_PER_TARGET=${FUZZ_SECONDS:-10}
cd "$REPO"

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    FUZZ=(cargo fuzz)
fi

# [[bin]] names from fuzz/Cargo.toml: the `name = "..."` line that follows each [[bin]] header.
mapfile -t TARGETS < <(awk '
    /^\[\[bin\]\]/ { in_bin = 1; next }
    /^\[/          { in_bin = 0 }
    in_bin && /^[[:space:]]*name[[:space:]]*=/ {
        gsub(/.*=[[:space:]]*"|".*/, ""); print; in_bin = 0
    }' fuzz/Cargo.toml)
((${#TARGETS[@]} > 0)) || {
    echo "fuzz-smoke: no [[bin]] targets found in fuzz/Cargo.toml" >&2
    exit 1
}
echo "fuzz-smoke: ${FUZZ[*]}; targets: ${TARGETS[*]}; ${SECONDS_PER_TARGET}s each"

# One build for all targets first, so a compile error is reported once and clearly.
"${FUZZ[@]}" build || {
    echo "fuzz-smoke: build failed" >&2
    exit 1
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failed=()
for t in "${TARGETS[@]}"; do
    # New inputs go to a scratch corpus; the committed seeds (fuzz/seeds/T: inputs that once
    # mattered, e.g. a smuggling shape) and a local corpus (fuzz/corpus/T, not committed) are
    # read too.
    corpora=("$WORK/$t")
    mkdir -p "$WORK/$t"
    [[ -d fuzz/seeds/$t ]] && corpora+=("fuzz/seeds/$t")
    [[ -d fuzz/corpus/$t ]] && corpora+=("fuzz/corpus/$t")
    echo "fuzz-smoke: running $t"
    if "${FUZZ[@]}" run "$t" "${corpora[@]}" -- -max_total_time="$SECONDS_PER_TARGET" \
        -print_final_stats=1 </dev/null; then
        echo "fuzz-smoke: $t ok"
    else
        echo "fuzz-smoke: $t FAILED (reproducer, if any, under fuzz/artifacts/$t/)" >&2
        failed+=("$t")
    fi
done

if ((${#failed[@]} > 0)); then
    echo "fuzz-smoke: failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz-smoke: all ${#TARGETS[@]} targets ok"
