#!/usr/bin/env bash
# Cross-shard publish limit under skew: 2 shards (both on CPU 0), publishers on CPU 1.
set -euo pipefail
T="${CARGO_TARGET_DIR:-target}/release"
R=loadtest/results/2026-11-30-policy
python3 loadtest/policy_skew.py --bin "$T/sluicegate" --rate 2000 --burst 200 --secs 10 \
  --runs 3 --publishers 10 --patterns abcd --json "$R/skew-runs.json"
