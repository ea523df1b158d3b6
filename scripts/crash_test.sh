#!/usr/bin/env bash
# Crash consistency, the long version: kill -9 worker-sim N times per backend (default 200) at
# uniformly random points of its run against a separate `oauthtest --mode serve` in the rotation
# scenario, with refresh storms every 100 ms; every third iteration also kills the first import
# into a fresh store mid-migration. After each kill every credential must decrypt, every row be
# whole, and the stored refresh token be the live one at the mock (see tests/cli/crash.rs for
# the exact checks and the one counted exception). It runs the CI test of the same name with
# OAUTHTEST_CRASH_KILLS=N, so the checks are the same code. Prints one summary line per backend;
# exits non-zero on any violation.
# Every envelope is bound to its store, row and row version, so "every credential decrypts" after
# a kill also proves that no write left an envelope sealed for a version the row is not at. Then
# the store-binding and lease checks run on both backends (tests/cli/hostile.rs): an older envelope
# put back after a write, one copied from another store, key_id / has_refresh_token columns that
# disagree with the envelope, otv1 envelopes still read and re-bound by rekey, and a lease left
# by a killed process taken over at once; and the interrupted-run checks (tests/cli/interrupted.rs):
# rows a kill -9 left named by doctor and removed by `--mode cleanup`, a live run's kept, and the
# partial summary a SIGINT or SIGTERM prints.
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

binding_tests=(
  hostile::an_older_envelope_put_back_or_one_from_another_store_is_refused
  hostile::doctor_compares_key_id_and_has_refresh_token_with_the_envelope
  hostile::envelopes_sealed_before_store_binding_are_still_read_and_rekey_binds_them
  hostile::a_lease_left_by_a_killed_process_on_this_host_is_taken_over_at_once
  hostile::a_lease_held_by_a_live_process_is_waited_for_saying_whose_and_how_long
  interrupted::
)
status=0
"$CARGO" test --manifest-path "$root/Cargo.toml" --test cli -- "${binding_tests[@]}" \
  > "$log" 2>&1 || status=$?
passed=$(grep -oE 'test result: ok\. [0-9]+ passed' "$log" | grep -oE '[0-9]+ passed' || true)
if [ "$status" -ne 0 ]; then
  grep -A20 -E 'panicked|^error' "$log" | head -60 >&2 || tail -40 "$log" >&2
  echo "store binding, lease or interrupted-run checks FAILED" >&2
  exit 1
fi
echo "store binding, lease and interrupted-run checks passed (${passed:-0 passed}, SQLite and PostgreSQL)"
