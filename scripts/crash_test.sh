#!/usr/bin/env bash
# Crash consistency, the long version: kill -9 worker-sim N times per backend (default 200) at
# uniformly random points of its run against a separate `oauthtest --mode serve` in the rotation
# scenario, with refresh storms every 100 ms; every third iteration also kills the first import
# into a fresh store mid-migration. After each kill every credential must decrypt, every row be
# whole, and the stored refresh token be the live one at the mock (see tests/cli/crash.rs for
# the exact checks and the one counted exception). It runs the CI test of the same name with
# OAUTHTEST_CRASH_KILLS=N, so the checks are the same code. Prints one summary line per backend;
# exits non-zero on any violation.
# Usage: scripts/crash_test.sh [N]. OAUTHTEST_CRASH_SEED=S repeats a run's kill points.
# PostgreSQL: OAUTHTEST_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test);
# with CI set it must answer, otherwise its half is skipped with a SKIPPED line.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kills="${1:-200}"
: "${CARGO:=cargo}"
case "$kills" in ''|*[!0-9]*) echo "usage: scripts/crash_test.sh [N]  (N: kills per backend)" >&2; exit 2 ;; esac

command -v "$CARGO" >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 2; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -sr)"
echo "crash test: $kills kills per backend"
log="$(mktemp)"; trap 'rm -f "$log"' EXIT
status=0
OAUTHTEST_CRASH_KILLS="$kills" "$CARGO" test --manifest-path "$root/Cargo.toml" --test cli \
  -- crash::kill_nine --nocapture --test-threads 1 > "$log" 2>&1 || status=$?
grep -oE '(crash (sqlite|postgres): .*|SKIPPED: .*)' "$log" || true
if [ "$status" -ne 0 ]; then
  grep -A40 -E 'panicked|violation|^error' "$log" | head -80 >&2 || tail -40 "$log" >&2
  echo "crash test FAILED" >&2
  exit 1
fi
echo "crash test passed: 0 violations"
