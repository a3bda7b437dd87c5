#!/usr/bin/env bash
# Criterion benches of the policy engine, pinned to CPU 1, one run each.
set -euo pipefail
R=loadtest/results/2026-11-30-policy
taskset -c 1 cargo bench --bench policy -- --measurement-time 5 > "$R/criterion-policy.txt" 2>&1
taskset -c 1 cargo bench --bench fanout -- --measurement-time 5 > "$R/criterion-fanout.txt" 2>&1
