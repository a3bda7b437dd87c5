#!/usr/bin/env bash
# End-to-end fan-out, egress limits configured but never reached vs none. From the repo root,
# with the release build in ${CARGO_TARGET_DIR:-target}/release.
set -euo pipefail
T="${CARGO_TARGET_DIR:-target}/release"
python3 loadtest/variants.py \
  --bin baseline="$T/sluicegate" --bin egress-limited="$T/sluicegate" \
  --args egress-limited='--set limits.egress_events={per_s=1e9,burst=1e9} --set limits.egress_bytes={per_s=1e12,burst=1e12}' \
  --loadtest "$T/loadtest" --scenario 1000x50 --scenario 100x1000 --reps 5 --secs 8
