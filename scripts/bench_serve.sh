#!/usr/bin/env bash
# Side-by-side benchmark of the refresh_token grant: `oauthtest --mode serve` against npm's
# oauth2-mock-server (the most used OAuth2 mock there), same machine, same wrk settings.
#
#   scripts/bench_serve.sh                  # 32 connections, 10 s each, after a 3 s warm-up
#   DURATION=30s CONNECTIONS=64 scripts/bench_serve.sh
#
# Prints requests/s and p99 latency for both. wrk runs on the same machine as the servers, so
# the figures are for comparison, not absolute capacity.
set -euo pipefail

: "${DURATION:=10s}"
: "${WARMUP:=3s}"
: "${CONNECTIONS:=32}"
: "${THREADS:=2}"
: "${OAUTH2_MOCK_SERVER_VERSION:=8}"

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is not installed; $2" >&2; exit 2; }
}
need wrk "install it with: apt-get install wrk (or brew install wrk)"
need npm "install Node.js 18 or later (https://nodejs.org)"
need node "install Node.js 18 or later (https://nodejs.org)"
need curl "install it with: apt-get install curl"
need cargo "install Rust (https://rustup.rs)"

cd "$(dirname "$0")/.."
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "building oauthtest (release)"
cargo build --release --quiet
echo "installing oauth2-mock-server@${OAUTH2_MOCK_SERVER_VERSION} into a temporary directory"
(cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund \
  "oauth2-mock-server@${OAUTH2_MOCK_SERVER_VERSION}" >/dev/null)

# Waits until FILE has a line matching PATTERN and prints the first match.
wait_for_line() {
  local file=$1 pattern=$2
  for _ in $(seq 1 100); do
    if grep -m1 -oE "$pattern" "$file" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "error: nothing matching $pattern in $file:" >&2
  cat "$file" >&2
  exit 3
}

# oauthtest serve, logging warnings only (a log line per request would measure stderr).
target/release/oauthtest --mode serve --port 0 --log warn >"$work/oauthtest.out" 2>&1 &
pids+=($!)
oauthtest_url=$(wait_for_line "$work/oauthtest.out" '^http://[0-9.:]+')
minted=$(curl -fsS -X POST "$oauthtest_url/__admin/refresh-tokens" -d '{}')
refresh_token=$(printf '%s' "$minted" | sed -E 's/.*"refresh_token":"([^"]+)".*/\1/')

node "$work/node_modules/oauth2-mock-server/dist/oauth2-mock-server.mjs" -a 127.0.0.1 -p 0 \
  >"$work/node.out" 2>&1 &
pids+=($!)
node_url=$(wait_for_line "$work/node.out" 'http://127\.0\.0\.1:[0-9]+')

# The same refresh_token grant for both: body credentials, Google's default client.
cat >"$work/refresh.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=refresh_token&refresh_token=${refresh_token//\//%2F}&client_id=mock-client-id.apps.googleusercontent.com&client_secret=mock-client-secret"
LUA

for url in "$oauthtest_url" "$node_url"; do
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/token" \
    -H 'Content-Type: application/x-www-form-urlencoded' --data "@-" <<<"$(sed -nE 's/^wrk.body = "(.*)"$/\1/p' "$work/refresh.lua")")
  [ "$status" = 200 ] || { echo "error: $url/token answered $status to the benchmark request" >&2; exit 3; }
done

bench() {
  local name=$1 url=$2
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$work/refresh.lua" "$url/token" >/dev/null
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$work/refresh.lua" "$url/token")
  local rps p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)
  printf '%-20s %12s req/s   p99 %10s   %s\n' "$name" "$rps" "$p99" "${errors:-no errors}"
  echo "$rps" >"$work/$name.rps"
}

echo "refresh_token grant, wrk -t$THREADS -c$CONNECTIONS -d$DURATION on $(nproc) CPUs"
bench "oauthtest serve" "$oauthtest_url"
bench "oauth2-mock-server" "$node_url"
awk -v a="$(cat "$work/oauthtest serve.rps")" -v b="$(cat "$work/oauth2-mock-server.rps")" \
  'BEGIN { if (b > 0) printf "oauthtest serve / oauth2-mock-server throughput: %.1fx\n", a / b }'
