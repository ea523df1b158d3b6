#!/usr/bin/env bash
# Every benchmark of oauthtest in one run. Writes docs/benchmarks.md (and the plot beside it,
# docs/benchmarks-scaling.svg) from exactly the figures it prints, with the machine, date, commit
# and tool versions they were measured with:
#
#   mock-all    wall time of `--mode mock-all` over the shipped scenarios (hyperfine)
#   serve       `--mode serve` and npm's oauth2-mock-server on the refresh_token grant, one after
#               the other with the same wrk settings, and the ratio
#   worker-sim  jobs/s, token requests per expiry, p99 and peak memory over workers x jobs, on
#               SQLite and PostgreSQL, and an SVG plot of it (matplotlib)
#   celery-sim  `celery-sim --target-cmd` with the reference application's real Celery workers
#               (examples/refapp, Redis at 127.0.0.1:6379): wall time of CELERY_JOBS jobs, and of
#               one job per worker (the start-up cost), for each of CELERY_WORKERS workers
#   crypto      encrypt and decrypt of one credential (criterion, benches/crypto.rs)
#   cold-start  a fresh process: `--help`, and `--mode list` on an empty SQLite store (hyperfine)
#
# Usage: scripts/bench.sh [--quick] [--only PART[,PART...]] [--out FILE.md]
#   --quick  a smoke run of every part (small grid, short runs; about a minute after the build)
#   --only   only the named parts
#   --out    where the report goes. Default: docs/benchmarks.md for a full run of every part; a
#            quick or partial run writes target/bench/benchmarks.md, never the published figures.
#
# Tools: cargo and python3 are required. wrk and hyperfine are installed with apt-get when this runs
# as root on Debian or Ubuntu (BENCH_INSTALL=never to skip instead); otherwise the parts needing them
# are skipped with an install hint (hyperfine's are timed by a Python loop instead). Without
# npm/node the comparison with oauth2-mock-server is skipped; without PostgreSQL (psql and a server
# at OAUTHTEST_BENCH_POSTGRES_URL) its rows are. oauth2-mock-server (npm) and matplotlib (PyPI) are
# installed, pinned, under target/bench/tools. Everything skipped is listed in the report.
# Settings (environment; defaults below): MOCK_ALL_RUNS, COLD_START_RUNS, SERVE_DURATION,
# SERVE_WARMUP, SERVE_CONNECTIONS, SERVE_THREADS, SIM_WORKERS, SIM_JOBS (space-separated grids),
# SIM_TOKEN_TTL_SECS, CELERY_WORKERS, CELERY_JOBS, OAUTH2_MOCK_SERVER_VERSION, MATPLOTLIB_VERSION, OAUTHTEST_BENCH_POSTGRES_URL
# (a scratch database is created there and dropped), BENCH_INSTALL=auto|never.
# A full run takes about 6 minutes after the build on 2 cores. Works from any directory.
set -euo pipefail

: "${MOCK_ALL_RUNS:=20}"
: "${COLD_START_RUNS:=50}"
: "${SERVE_DURATION:=10s}"
: "${SERVE_WARMUP:=3s}"
: "${SERVE_CONNECTIONS:=32}"
: "${SERVE_THREADS:=2}"
: "${SIM_WORKERS:=10 100 1000}"
: "${SIM_JOBS:=1000 10000 100000}"
: "${SIM_TOKEN_TTL_SECS:=5}"
: "${CELERY_WORKERS:=1 4 12}"
: "${CELERY_JOBS:=1000}"
: "${OAUTH2_MOCK_SERVER_VERSION:=8.2.3}"
: "${MATPLOTLIB_VERSION:=3.10.8}"
: "${OAUTHTEST_BENCH_POSTGRES_URL:=postgres://postgres@127.0.0.1:5432/test}"
: "${BENCH_INSTALL:=auto}"

invocation="scripts/bench.sh${*:+ $*}"
all_parts="mock-all,serve,worker-sim,celery-sim,crypto,cold-start"
parts=$all_parts quick=false out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=true ;;
    --only) parts=${2:?--only needs a comma-separated list of: $all_parts}; shift ;;
    --out) out=${2:?--out needs a file name}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for part in ${parts//,/ }; do
  case ",$all_parts," in *",$part,"*) ;; *) echo "error: --only $part: the parts are $all_parts" >&2; exit 2 ;; esac
done
wants() { case ",$parts," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
if $quick; then
  MOCK_ALL_RUNS=5 COLD_START_RUNS=10 SERVE_DURATION=3s SERVE_WARMUP=1s
  SIM_WORKERS="10 100" SIM_JOBS="1000 10000" CELERY_WORKERS="1 4" CELERY_JOBS=200
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$root/target/bench"
results="$bench/results"
tools="$bench/tools"
if [ -z "$out" ]; then
  if ! $quick && [ "$parts" = "$all_parts" ]; then out="$root/docs/benchmarks.md"; else out="$bench/benchmarks.md"; fi
fi
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
svg="${out%.md}-scaling.svg"

command -v cargo >/dev/null || { echo "error: cargo is required; install Rust (https://rustup.rs)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "error: python3 is required; install it (apt-get install python3)" >&2; exit 2; }
report() { python3 "$root/scripts/bench_report.py" "$@"; }

rm -rf "$results"; mkdir -p "$results" "$tools"
setting() { printf '%s\t%s\n' "$1" "$2" >>"$results/settings.tsv"; }
version() { printf '%s\t%s\n' "$1" "$2" >>"$results/versions.tsv"; }
skip() { printf '%s\t%s\n' "$1" "$2" >>"$results/skipped.tsv"; echo "SKIPPED $1: $2" >&2; }
section() { printf '\n== %s\n' "$1"; }

work="$(mktemp -d)"
pids=() pg_db=""
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$pg_db" ]; then psql "$OAUTHTEST_BENCH_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Makes command $1 available: present, or installed from Debian package $2 when that is clean (root,
# apt-get, BENCH_INSTALL=auto). Fails when it stays missing.
apt_updated=false
ensure() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$BENCH_INSTALL" = auto ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "$1 is missing: installing Debian package $2 with apt-get (running as root; BENCH_INSTALL=never to skip instead)"
    if ! $apt_updated; then apt-get update -qq >/dev/null || true; apt_updated=true; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 || true
  fi
  command -v "$1" >/dev/null 2>&1
}

have_hyperfine=false
if wants mock-all || wants cold-start; then
  if ensure hyperfine hyperfine; then have_hyperfine=true; else
    skip hyperfine "not installed (apt-get install hyperfine, brew install hyperfine or cargo install hyperfine); mock-all and cold start are timed by a Python loop instead"
  fi
fi

section "building oauthtest (release)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
if wants crypto; then cargo bench --quiet --manifest-path "$root/Cargo.toml" --bench crypto --no-run; fi

setting quick "$quick"
setting invocation "$invocation"
setting started "$(date +%s)"
setting load_start "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
echo "oauthtest benchmarks on $(nproc) cores, $(free -g 2>/dev/null | awk '/Mem:/{print $2 " GiB"}'), $(uname -sr); load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
bin="$root/target/release/oauthtest"
version oauthtest "$("$bin" --version | awk '{print $2}')"
version rustc "$(rustc --version | awk '{print $2}')"
$have_hyperfine && version hyperfine "$(hyperfine --version | awk '{print $2}')"

# Timings of one or more commands (hyperfine when present, else a Python loop) as hyperfine JSON.
time_commands() { # OUT RUNS WARMUP COMMAND...
  local out=$1 runs=$2 warmup=$3; shift 3
  if $have_hyperfine; then
    hyperfine --shell=none --warmup "$warmup" --runs "$runs" --export-json "$out" "$@"
  else
    local cmd first=true
    for cmd in "$@"; do
      # shellcheck disable=SC2086 # each command is a plain word list
      report time "$runs" "$work/one.json" -- $cmd
      if $first; then cp "$work/one.json" "$out"; first=false
      else python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); a["results"]+=json.load(open(sys.argv[2]))["results"]; json.dump(a,open(sys.argv[1],"w"))' "$out" "$work/one.json"; fi
    done
  fi
}

if wants mock-all; then
  section "mock-all: every shipped scenario ($MOCK_ALL_RUNS runs)"
  (cd "$work" && "$bin" --mode mock-all --format json >"$results/mock_all_scenarios.json") || {
    echo "error: mock-all failed outside the benchmark; fix that first (oauthtest --mode mock-all)" >&2; exit 3; }
  (cd "$work" && time_commands "$results/mock_all.json" "$MOCK_ALL_RUNS" 2 "$bin --mode mock-all --format json")
  setting mock_all_maxrss_kb "$(cd "$work" && report maxrss -- "$bin" --mode mock-all --format json)"
  report section mock-all "$results"
fi

if wants serve; then
  section "serve: refresh_token grant against oauth2-mock-server"
  setting serve_threads "$SERVE_THREADS"; setting serve_connections "$SERVE_CONNECTIONS"
  setting serve_duration "$SERVE_DURATION"; setting serve_warmup "$SERVE_WARMUP"
  if ! ensure wrk wrk; then
    skip serve "wrk is not installed (apt-get install wrk, or brew install wrk)"
  elif ! command -v curl >/dev/null; then
    skip serve "curl is not installed (apt-get install curl)"
  else
    version wrk "$(wrk -v 2>&1 | awk 'NR==1{print $2}')"
    node_ok=false
    if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
      skip oauth2-mock-server "npm/node are not installed (Node.js 20.19 or later: https://nodejs.org); oauthtest serve measured alone, no ratio"
    elif [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
      skip oauth2-mock-server "node $(node --version) is too old for oauth2-mock-server $OAUTH2_MOCK_SERVER_VERSION (needs 20.19 or later); oauthtest serve measured alone, no ratio"
    else
      echo "installing oauth2-mock-server@$OAUTH2_MOCK_SERVER_VERSION from npm into $tools/npm"
      mkdir -p "$tools/npm"
      if (cd "$tools/npm" && { [ -f package.json ] || npm init -y >/dev/null 2>&1; } \
          && npm install --silent --no-audit --no-fund --save-exact "oauth2-mock-server@$OAUTH2_MOCK_SERVER_VERSION" >/dev/null 2>&1); then
        node_ok=true
        version node "$(node --version)"
        version oauth2-mock-server "$OAUTH2_MOCK_SERVER_VERSION"
        setting oauth2_mock_server_version "$OAUTH2_MOCK_SERVER_VERSION"
      else
        skip oauth2-mock-server "npm install oauth2-mock-server@$OAUTH2_MOCK_SERVER_VERSION failed (is the npm registry reachable?); oauthtest serve measured alone, no ratio"
      fi
    fi

    # Waits until FILE has a line matching PATTERN and prints the first match.
    wait_for_line() {
      local file=$1 pattern=$2
      for _ in $(seq 1 100); do
        if grep -m1 -oE "$pattern" "$file" 2>/dev/null; then return 0; fi
        sleep 0.1
      done
      echo "error: nothing matching $pattern in $file:" >&2; cat "$file" >&2; exit 3
    }
    # serve logs warnings only: a log line per request would measure stderr.
    "$bin" --mode serve --port 0 --log warn >"$work/oauthtest.out" 2>&1 &
    pids+=($!)
    oauthtest_url=$(wait_for_line "$work/oauthtest.out" '^http://[0-9.:]+')
    refresh_token=$(curl -fsS -X POST "$oauthtest_url/__admin/refresh-tokens" -H 'Content-Type: application/json' -d '{}' \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
    body="grant_type=refresh_token&refresh_token=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$refresh_token")&client_id=mock-client-id.apps.googleusercontent.com&client_secret=mock-client-secret"
    targets=("oauthtest" "$oauthtest_url")
    if $node_ok; then
      node "$tools/npm/node_modules/oauth2-mock-server/dist/oauth2-mock-server.mjs" -a 127.0.0.1 -p 0 >"$work/node.out" 2>&1 &
      pids+=($!)
      targets+=("oauth2-mock-server" "$(wait_for_line "$work/node.out" 'http://127\.0\.0\.1:[0-9]+')")
    fi
    set -- "${targets[@]}"
    while [ $# -gt 0 ]; do
      name=$1 url=$2; shift 2
      status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/token" \
        -H 'Content-Type: application/x-www-form-urlencoded' --data "$body")
      [ "$status" = 200 ] || { echo "error: $name at $url/token answered $status to the benchmark request" >&2; exit 3; }
      # The same request for both; wrk's done() writes the figures as JSON.
      cat >"$work/$name.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "$body"
function done(summary, latency, requests)
  local e = summary.errors
  local f = io.open("$results/serve_$name.json", "w")
  f:write(string.format('{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%f}',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
  f:close()
end
LUA
      wrk -t"$SERVE_THREADS" -c"$SERVE_CONNECTIONS" -d"$SERVE_WARMUP" -s "$work/$name.lua" "$url/token" >/dev/null
      wrk -t"$SERVE_THREADS" -c"$SERVE_CONNECTIONS" -d"$SERVE_DURATION" -s "$work/$name.lua" "$url/token" >/dev/null
    done
    report section serve "$results"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    pids=()
  fi
fi

if wants worker-sim; then
  section "worker-sim: workers {$SIM_WORKERS} x jobs {$SIM_JOBS}, credentials = workers, token TTL ${SIM_TOKEN_TTL_SECS}s"
  setting sim_ttl "$SIM_TOKEN_TTL_SECS"
  backends=(sqlite)
  if ! command -v psql >/dev/null; then
    skip "worker-sim on PostgreSQL" "psql is not installed (apt-get install postgresql-client); PostgreSQL rows left out"
  elif ! psql "$OAUTHTEST_BENCH_POSTGRES_URL" -qc 'select 1' >/dev/null 2>&1; then
    skip "worker-sim on PostgreSQL" "no PostgreSQL answers at $OAUTHTEST_BENCH_POSTGRES_URL (set OAUTHTEST_BENCH_POSTGRES_URL, or start one); PostgreSQL rows left out"
  else
    pg_db="oauthtest_bench_$$"
    psql "$OAUTHTEST_BENCH_POSTGRES_URL" -qc "CREATE DATABASE $pg_db" >/dev/null
    version PostgreSQL "$(psql "$OAUTHTEST_BENCH_POSTGRES_URL" -tAc 'show server_version' | awk '{print $1}')"
    backends+=(postgres)
  fi
  mkdir -p "$results/worker_sim"
  report header worker-sim
  for backend in "${backends[@]}"; do
    url=""; [ "$backend" = postgres ] && url="${OAUTHTEST_BENCH_POSTGRES_URL%/*}/$pg_db"
    for workers in $SIM_WORKERS; do
      for jobs in $SIM_JOBS; do
        file="$results/worker_sim/${backend}_${workers}_${jobs}.json"
        # Exit 1 means an invariant broke: the row says which, and the run goes on.
        (cd "$work" && DATABASE_URL="$url" "$bin" --mode worker-sim --workers "$workers" --jobs "$jobs" \
          --credentials "$workers" --token-ttl-secs "$SIM_TOKEN_TTL_SECS" --format json >"$file" 2>"$work/sim.err") || {
          [ $? = 1 ] || { echo "error: worker-sim failed:" >&2; cat "$work/sim.err" >&2; exit 3; }; }
        report worker-sim-row "$file" "$backend"
      done
    done
  done
  if [ "$(wc -w <<<"$SIM_WORKERS")" -lt 2 ] && [ "$(wc -w <<<"$SIM_JOBS")" -lt 2 ]; then
    skip plot "a single worker-sim run has nothing to plot"
  else
    section "plotting the scaling runs (matplotlib $MATPLOTLIB_VERSION)"
    venv="$tools/venv"
    if { [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >/dev/null 2>&1; } \
      && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "matplotlib==$MATPLOTLIB_VERSION" >/dev/null 2>&1; then
      "$venv/bin/python" "$root/scripts/bench_report.py" plot "$results" "$svg"
      setting plot written
      setting matplotlib "$MATPLOTLIB_VERSION"
    else
      skip plot "could not install matplotlib $MATPLOTLIB_VERSION into a venv at $venv (needs python3-venv, apt-get install python3-venv, and PyPI)"
    fi
  fi
fi

if wants celery-sim; then
  section "celery-sim --target-cmd: the reference application's Celery workers {$CELERY_WORKERS} x jobs {1 per worker, $CELERY_JOBS}"
  setting celery_jobs "$CELERY_JOBS"
  if ! python3 -c 'import celery, redis, google.auth, cryptography' 2>/dev/null; then
    skip celery-sim "Celery, google-auth or cryptography is missing (python3 -m pip install 'celery[redis]' google-auth cryptography)"
  elif ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    skip celery-sim "no Redis answers at 127.0.0.1:6379 (apt-get install redis-server; redis-server --daemonize yes)"
  else
    version celery "$(python3 -c 'import celery; print(celery.__version__)')"
    mkdir -p "$results/celery_sim"
    export PYTHONPATH="$root/examples/refapp" DATABASE_URL="sqlite://$work/app.db"
    APP_ENCRYPTION_KEY="$(python3 -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
    export APP_ENCRYPTION_KEY
    python3 -m refapp init-db >/dev/null
    for workers in $CELERY_WORKERS; do
      for jobs in "$workers" "$CELERY_JOBS"; do
        file="$results/celery_sim/${workers}_${jobs}.json"
        # N worker processes (--target-cmd, one worker each), the jobs sent by --enqueue-cmd.
        (cd "$work" && "$bin" --mode celery-sim --store-config "$root/examples/refapp/oauthtest.toml" \
          --concurrency "$workers" --jobs "$jobs" --credentials 3 --token-ttl-secs 2 --target-timeout 600 \
          --target-cmd 'python3 -m refapp worker --concurrency 1 --queue "$OAUTHTEST_RUN_ID"' \
          --enqueue-cmd 'python3 -m refapp enqueue --queue "$OAUTHTEST_RUN_ID" --credential-ids "$OAUTHTEST_CREDENTIAL_IDS" --jobs "$OAUTHTEST_JOBS" --timeout 600' \
          --format json >"$file" 2>"$work/celery.err") || {
          [ $? = 1 ] || { echo "error: celery-sim failed:" >&2; cat "$work/celery.err" >&2; exit 3; }; }
        report celery-sim-row "$file"
      done
    done
    unset PYTHONPATH DATABASE_URL APP_ENCRYPTION_KEY
    report section celery-sim "$results"
  fi
fi

if wants crypto; then
  section "crypto: encrypt and decrypt of one credential (criterion)"
  rm -rf "$root/target/criterion/credential"
  crit_args=(--noplot); $quick && crit_args+=(--quick)
  cargo bench --quiet --manifest-path "$root/Cargo.toml" --bench crypto -- "${crit_args[@]}"
  for op in encrypt decrypt; do
    mkdir -p "$results/crypto/$op"
    cp "$root/target/criterion/credential/$op/new/"{estimates,benchmark}.json "$results/crypto/$op/"
  done
  version criterion "$(awk '/^name = "criterion"$/{getline; print $3}' "$root/Cargo.lock" | tr -d '"')"
  report section crypto "$results"
fi

if wants cold-start; then
  section "cold start: --help, and --mode list on an empty SQLite store ($COLD_START_RUNS runs)"
  (cd "$work" && DATABASE_URL="sqlite://$work/empty.db" "$bin" --mode list >/dev/null \
    && DATABASE_URL="sqlite://$work/empty.db" time_commands "$results/cold_start.json" "$COLD_START_RUNS" 3 \
      "$bin --help" "$bin --mode list")
  report section cold-start "$results"
fi

setting load_end "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
setting finished "$(date +%s)"
section "report: $out"
report render "$results" "$out"
echo
echo "wrote $out$([ -f "$svg" ] && grep -q '^plot	written' "$results/settings.tsv" && echo " and $svg")"
