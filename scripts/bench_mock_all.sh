#!/usr/bin/env bash
# Benchmark: wall time of `oauthtest --mode mock-all` over the shipped scenario set.
# Usage: scripts/bench_mock_all.sh [RUNS]   (default 20). Works from any directory.
set -euo pipefail
: "${RUNS:=${1:-20}}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 2; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/oauthtest"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"

scenarios=$("$bin" --mode mock-all --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["passed"]+d["failed"])')
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; scenarios: $scenarios; runs: $RUNS"

if command -v hyperfine >/dev/null; then
  hyperfine --warmup 2 --runs "$RUNS" "$bin --mode mock-all --format json"
else
  times=()
  for _ in $(seq 1 "$RUNS"); do
    start=$(date +%s%N)
    "$bin" --mode mock-all --format json >/dev/null
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "mock-all wall time (ms): min %d, median %d, max %d\n", a[1], a[int((NR+1)/2)], a[NR]}'
fi
peak=$( { /usr/bin/time -f '%M' "$bin" --mode mock-all --format json >/dev/null; } 2>&1 | tail -n1 )
echo "peak memory: ${peak} KB"
