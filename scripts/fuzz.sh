#!/usr/bin/env bash
# The long fuzzing run: every cargo-fuzz target in fuzz/fuzz_targets/ for a bounded time each,
# one after another (one job per target), then a table of executions and findings.
#
#   scripts/fuzz.sh              # 300 s per target
#   scripts/fuzz.sh 60           # 60 s per target
#   FUZZ_TARGETS="envelope import" scripts/fuzz.sh 120
#
# The targets' bodies and properties are in fuzz/harness/mod.rs; `cargo test` replays the
# committed corpus (fuzz/corpus/) and past findings (fuzz/regressions/) through the same code on
# stable. New corpus entries go to fuzz/work/<target>/ (not committed); a crash is written to
# fuzz/artifacts/<target>/: minimise it (`cargo +nightly fuzz tmin <target> <file>`), fix the
# bug and keep the input under fuzz/regressions/<target>/. Exits 1 if any target found a crash.
set -euo pipefail

: "${FUZZ_SECONDS:=${1:-300}}"
: "${FUZZ_TARGETS:=}"
: "${FUZZ_TIMEOUT_SECONDS:=10}"
: "${FUZZ_MAX_LEN:=8192}"

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is not installed; $2" >&2; exit 2; }
}
need cargo "install Rust (https://rustup.rs)"
cargo +nightly --version >/dev/null 2>&1 ||
  { echo "error: no nightly toolchain; install it with: rustup toolchain install nightly" >&2; exit 2; }
cargo +nightly fuzz --version >/dev/null 2>&1 ||
  { echo "error: cargo-fuzz is not installed; install it with: cargo install cargo-fuzz --locked" >&2; exit 2; }
[[ "$FUZZ_SECONDS" =~ ^[0-9]+$ ]] ||
  { echo "error: seconds per target must be a whole number, got '$FUZZ_SECONDS'" >&2; exit 2; }

cd "$(dirname "$0")/../fuzz"
if [[ -z "$FUZZ_TARGETS" ]]; then
  FUZZ_TARGETS=$(for f in fuzz_targets/*.rs; do basename "$f" .rs; done)
fi
mkdir -p work
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr)"
echo "building the fuzz targets (cargo +nightly fuzz build, release with AddressSanitizer)"
cargo +nightly fuzz build

failed=0
results=()
for target in $FUZZ_TARGETS; do
  echo "fuzzing $target for ${FUZZ_SECONDS} s"
  mkdir -p "work/$target" "regressions/$target" "artifacts/$target"
  before=$(find "artifacts/$target" -type f | wc -l)
  log="$logs/$target.log"
  set +e
  cargo +nightly fuzz run "$target" "work/$target" "corpus/$target" "regressions/$target" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT_SECONDS" -max_len="$FUZZ_MAX_LEN" \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  # libFuzzer's final stats, or failing that its last status line (`#N ...`).
  execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{print $2}' | tail -n 1)
  [[ -n "$execs" ]] || execs=$(grep -oE '^#[0-9]+' "$log" | tr -d '#' | tail -n 1)
  [[ -n "$execs" ]] || execs=0
  cov=$(grep -oE 'cov: [0-9]+' "$log" | awk '{print $2}' | tail -n 1)
  after=$(find "artifacts/$target" -type f | wc -l)
  findings=$((after - before))
  if ((rc != 0 && findings == 0)); then
    findings=1 # libFuzzer stopped on something it could not write out: read the log
  fi
  if ((findings > 0)); then
    failed=1
    echo "FINDING in $target (exit $rc); log tail:"
    tail -n 40 "$log" | sed 's/^/    /'
    grep -E 'Test unit written to' "$log" | sed 's/^/    /' || true
  fi
  results+=("$(printf '%-16s %12s %10s %8s %9s' "$target" "$execs" \
    "$((execs / (FUZZ_SECONDS > 0 ? FUZZ_SECONDS : 1)))" "${cov:-?}" "$findings")")
done

echo
printf '%-16s %12s %10s %8s %9s\n' target execs execs/s cov findings
printf '%s\n' "${results[@]}"
if ((failed)); then
  echo "fuzz: crashes found; see fuzz/artifacts/" >&2
  exit 1
fi
echo "fuzz: no findings in ${FUZZ_SECONDS} s per target"
