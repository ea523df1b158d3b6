#!/usr/bin/env bash
# The binary the container image holds, run as the image runs it, for machines with no container
# engine. Builds the static release binary (crt-static on the gnu target: the toolchain here has
# no musl target, which the Dockerfile's rust:alpine stage uses), checks that it needs no loader
# and no shared library, puts it alone in an empty root directory and runs it there (chroot, as
# user nobody) in a network namespace of its own, with the Dockerfile's CMD; then the
# Dockerfile's HEALTHCHECK command, google-auth's checks (tests/python/google_auth_check.py) and
# mock-all inside that root. One PASS/FAIL line each; exit 1 if any failed.
#
# Usage: scripts/container_check.sh [--bin PATH]   (--bin: a static binary already built)
# Needs: root (unshare -n, chroot), cargo, readelf, wget, python3 with google-auth and requests.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "container_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
: "${CARGO:=cargo}"
for tool in unshare chroot ip readelf wget python3; do
  command -v "$tool" >/dev/null || { echo "container_check.sh: $tool is missing (apt-get install util-linux iproute2 binutils wget python3)" >&2; exit 2; }
done
python3 -c 'import google.auth, requests' 2>/dev/null \
  || { echo "container_check.sh: python3 needs google-auth (python3 -m pip install google-auth requests)" >&2; exit 2; }

passed=0
failed=0
pass() { printf 'PASS  %s\n' "$1"; passed=$((passed + 1)); }
fail() { printf 'FAIL  %s\n' "$1"; failed=$((failed + 1)); }

if [ -z "$bin" ]; then
  target=x86_64-unknown-linux-gnu
  started=$(date +%s)
  RUSTFLAGS="-C target-feature=+crt-static" "$CARGO" build --release --locked --quiet \
    --target "$target" --bin oauthtest
  bin="${CARGO_TARGET_DIR:-target}/$target/release/oauthtest"
  pass "build: static release binary in $(($(date +%s) - started)) s"
fi

if readelf -l "$bin" | grep -q 'INTERP' || readelf -d "$bin" 2>/dev/null | grep -q '(NEEDED)'; then
  fail "static: $bin needs a loader or shared libraries:"
  readelf -d "$bin" | grep NEEDED | sed 's/^/      /'
else
  pass "static: no interpreter, no shared library ($(du -h "$bin" | cut -f1))"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/usr/local/bin" "$root/tmp" "$root/dev"
chmod 1777 "$root/tmp"
# What every container runtime gives a container in /dev: the binary needs /dev/urandom when the
# C library cannot name getrandom to it (a static glibc binary), as the rand crate seeds from it.
for node in "null c 1 3" "zero c 1 5" "random c 1 8" "urandom c 1 9"; do
  set -- $node
  mknod -m 666 "$root/dev/$1" "$2" "$3" "$4"
done
cp "$bin" "$root/usr/local/bin/oauthtest"
strip "$root/usr/local/bin/oauthtest" 2>/dev/null || true

# The image's CMD and HEALTHCHECK command, read from the Dockerfile.
cmd=$(sed -n 's/^CMD \[\(.*\)\]$/\1/p' Dockerfile | tr -d '",')
health=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' Dockerfile | grep '^HEALTHCHECK' | sed 's/.* CMD //')

out=$(unshare -n bash -c '
  set -u
  ip link set lo up
  root=$1 cmd=$2 health=$3
  chroot --userspec=65534:65534 "$root" /usr/local/bin/oauthtest $cmd >"$root/tmp/serve.out" 2>"$root/tmp/serve.err" &
  pid=$!
  for _ in $(seq 300); do [ -s "$root/tmp/serve.out" ] && break; sleep 0.1; done
  echo "url $(head -n 1 "$root/tmp/serve.out")"
  if sh -c "$health"; then echo "health ok"; else echo "health failed"; fi
  if python3 tests/python/google_auth_check.py http://127.0.0.1:8080 >"$root/tmp/google.out" 2>&1; then
    echo "google-auth ok $(grep -c "^PASS" "$root/tmp/google.out") checks"
  else
    echo "google-auth failed"; sed "s/^/      /" "$root/tmp/google.out"
  fi
  kill -TERM "$pid"; wait "$pid"; echo "stopped $?"
  if chroot --userspec=65534:65534 "$root" /usr/local/bin/oauthtest --mode mock-all >"$root/tmp/mock-all.out" 2>&1; then
    echo "mock-all ok $(tail -n 1 "$root/tmp/mock-all.out")"
  else
    echo "mock-all failed"; tail -n 20 "$root/tmp/mock-all.out" | sed "s/^/      /"
  fi
' in-netns "$root" "$cmd" "$health")
printf '%s\n' "$out" | grep -q '^url http://0.0.0.0:8080$' \
  && pass "serve: $cmd, alone in an empty root, printed http://0.0.0.0:8080" \
  || fail "serve: $(printf '%s\n' "$out" | grep '^url')"
printf '%s\n' "$out" | grep -q '^health ok$' && pass "healthcheck: $health" || fail "healthcheck: $health"
line=$(printf '%s\n' "$out" | grep '^google-auth' || true)
case "$line" in "google-auth ok"*) pass "$line" ;; *) fail "google-auth"; printf '%s\n' "$out" | grep '^      ' || true ;; esac
printf '%s\n' "$out" | grep -q '^stopped 0$' && pass "SIGTERM: exit 0" || fail "SIGTERM: $(printf '%s\n' "$out" | grep '^stopped')"
line=$(printf '%s\n' "$out" | grep '^mock-all' || true)
case "$line" in "mock-all ok"*) pass "${line/mock-all ok/mock-all in the empty root:}" ;; *) fail "mock-all"; printf '%s\n' "$out" | grep '^      ' || true ;; esac

echo "container check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
