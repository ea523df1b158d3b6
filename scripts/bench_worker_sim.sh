#!/usr/bin/env bash
# Benchmark: worker-sim throughput, refreshes per expiry and peak memory, on SQLite and PostgreSQL.
# The headline run is the issue's: 1,000 workers x 100,000 jobs x 1,000 credentials, with access
# tokens that live 5 s so every credential expires during the run. Then a scaling table (memory must
# stay flat as jobs grow). Usage: scripts/bench_worker_sim.sh [--quick]. Works from any directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${OAUTHTEST_BENCH_POSTGRES_URL:=postgres://postgres@127.0.0.1:5432/test}"
quick=false; [ "${1:-}" = "--quick" ] && quick=true

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is required (apt-get install python3)" >&2; exit 2; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/oauthtest"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"

pg_db=""
if command -v psql >/dev/null && psql "$OAUTHTEST_BENCH_POSTGRES_URL" -qc 'select 1' >/dev/null 2>&1; then
  pg_db="oauthtest_bench_$$"
  psql "$OAUTHTEST_BENCH_POSTGRES_URL" -qc "CREATE DATABASE $pg_db" >/dev/null
  trap 'psql "$OAUTHTEST_BENCH_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1; rm -rf "$work"' EXIT
else
  echo "PostgreSQL at $OAUTHTEST_BENCH_POSTGRES_URL not reachable: PostgreSQL rows skipped" >&2
fi

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
printf '%-10s %8s %9s %6s %10s %12s %10s %9s\n' backend workers jobs creds jobs/s tokens/expiry p99_ms peak_MB

run() { # backend workers jobs creds
  local url=""
  if [ "$1" = postgres ]; then
    [ -n "$pg_db" ] || return 0
    url="${OAUTHTEST_BENCH_POSTGRES_URL%/*}/$pg_db"
  fi
  DATABASE_URL="$url" "$bin" --mode worker-sim --workers "$2" --jobs "$3" --credentials "$4" \
    --token-ttl-secs 5 --format json > out.json || true
  python3 - "$1" <<'PY'
import json, sys
d = json.load(open("out.json"))
held = all(i["held"] for i in d["invariants"])
print("%-10s %8d %9d %6d %10.0f %12.2f %10.1f %9.1f%s" % (sys.argv[1], d["workers"], d["jobs"], d["credentials"],
      d["jobs_per_second"], d["refreshes_per_expiry"] or 0, d["latency_ms"]["p99"], (d["peak_memory_kb"] or 0) / 1024,
      "" if held else "  INVARIANT BROKEN"))
PY
}

for backend in sqlite postgres; do
  run "$backend" 1000 100000 1000
done
$quick && exit 0
echo "scaling (SQLite):"
for shape in "10 1000 10" "100 10000 100" "1000 10000 1000" "1000 100000 1000" "1000 300000 1000"; do
  # shellcheck disable=SC2086
  run sqlite $shape
done
