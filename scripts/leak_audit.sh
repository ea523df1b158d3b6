#!/usr/bin/env bash
# The long version of the leak audit (the CI-sized one is tests/cli/leak_audit.rs, which this
# runs with OAUTHTEST_LEAK_AUDIT_FULL set): every mode, in every format (text, json, junit) at
# every log level (default, --log error|info|debug|trace, -v, -vv, -vvv, OAUTHTEST_LOG=trace;
# RUST_LOG=trace always set), on SQLite and on PostgreSQL, plus the panic hook. Each run's
# stdout and stderr, every file left in its working directory (reports, the SQLite file and its
# WAL: ciphertext only, so no plaintext token may be in them), every row of every oauthtest table
# read with SQL, and serve's own output are scanned for the planted and minted secrets.
#
#   scripts/leak_audit.sh
#   OAUTHTEST_TEST_POSTGRES_URL=postgres://user@host:5432/db scripts/leak_audit.sh
#
# Then the database-password audit: every mode given a DATABASE_URL whose password is planted, in
# every shape a URL can take (an unparseable port, a broken IPv6 literal, ?password=, a password
# in a sqlite:// URL, a plain unreachable server), and the copy source the same way
# (tests/cli/hostile.rs); the password must appear in no output.
#
# Prints the runs and the occurrences found per backend (must be 0); exits 1 on any leak.
set -euo pipefail

: "${CARGO:=cargo}"
: "${OAUTHTEST_TEST_POSTGRES_URL:=postgres://postgres@127.0.0.1:5432/test}"
export OAUTHTEST_TEST_POSTGRES_URL

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is not installed; $2" >&2; exit 2; }
}
need "$CARGO" "install Rust (https://rustup.rs)"
need pg_isready "install the PostgreSQL client tools: apt-get install postgresql-client (and a server: apt-get install postgresql)"

cd "$(dirname "$0")/.."
if ! pg_isready -q -d "$OAUTHTEST_TEST_POSTGRES_URL"; then
  echo "error: no PostgreSQL answers at $OAUTHTEST_TEST_POSTGRES_URL; start it with" >&2
  echo "  pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" >&2
  exit 2
fi
echo "machine: $(nproc) cores, $(free -m | awk '/^Mem:/ {print $2}') MiB RAM"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
started=$(date +%s)
set +e
# CI=true: the PostgreSQL half must run, never skip.
OAUTHTEST_LEAK_AUDIT_FULL=1 CI=true "$CARGO" test --test cli leak_audit -- --nocapture \
  >"$log" 2>&1
status=$?
set -e
grep -E '^leak audit:|^test leak_audit::' "$log" || true
runs=$({ grep -oE '^leak audit: [0-9]+ runs' "$log" || true; } | awk '{s += $3} END {print s + 0}')
leaks=$({ grep -oE '^[0-9]+ leak\(s\)' "$log" || true; } | awk '{s += $1} END {print s + 0}')
echo "runs: $runs (2 backends, every mode × 3 formats × 9 log settings), occurrences of a secret: $leaks, in $(( $(date +%s) - started )) s"
set +e
"$CARGO" test --test cli hostile::a_database_password_is_never_printed -- --nocapture \
  >"$log.urls" 2>&1
url_status=$?
set -e
if [[ $url_status -eq 0 ]]; then
  echo "database URLs: 5 shapes × 12 runs (11 mode invocations and copy's source), password printed: 0 times"
else
  grep -A8 'panicked' "$log.urls" | head -20 >&2
  echo "database URLs: a password was printed (see above)" >&2
fi
rm -f "$log.urls"

if [[ $status -ne 0 || $url_status -ne 0 ]]; then
  grep -E 'panicked|leak\(s\)' "$log" | head -20 >&2
  echo "FAIL" >&2
  exit 1
fi
echo "PASS"
