#!/usr/bin/env bash
# The pre-deploy checklist: the gate before promoting an application to production. One
# PASS/FAIL/SKIP line per check, a summary line, exit 1 if any check failed. Works from any
# directory, and from a copy in the application's own repository; see --help.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/pre_deploy_check.sh [options]

The gate before promoting an application to production: its stored credentials, its store and
its settings, checked with the oauthtest binary. Checks, in order, one line each:
  tool NAME       each required tool is installed (with an install hint when not)
  tests           oauthtest's own test suite: skipped unless --oauthtest-tests
  mock-all        oauthtest --mode mock-all: every scenario, JUnit report written to --report
  migrations      the store's migrations are current (from oauthtest --mode doctor)
  configuration   the rest of oauthtest --mode doctor: key, production key kept apart,
                  database, every credential decrypts, production guard (and the token
                  endpoint, with --check-endpoint)
  credential N    oauthtest --mode real --credential-id N --dry-run (with --credential-id)
  secrets         no Google client secret, access token, refresh token or private key in
                  the repository (file:line and kind are shown, never the secret)

Options:
  --oauthtest-tests      also run oauthtest's own test suite (cargo test --workspace --locked);
                         needs this script inside an oauthtest checkout, and cargo
  --skip-tests           do not run oauthtest's test suite (the default; kept for old callers)
  --report FILE          where mock-all writes its JUnit report [default: mock-all.xml]
  --scenarios DIR        add the scenario files in DIR to mock-all
  --credential-id N      also check stored credential N on staging, changing nothing
  --check-endpoint       doctor also checks that the token endpoint answers (no credential sent)
  --repo DIR             the repository to scan for secrets
                         [default: the git repository of the current directory]
  --secrets-ignore FILE  paths the scan leaves out, one glob per line, # comments
                         [default: DIR/.oauthtest-secrets-ignore]
  -h, --help             show this help

Environment: oauthtest's own settings (OAUTHTEST_ENCRYPTION_KEY, DATABASE_URL, OAUTHTEST_ENV,
OAUTHTEST_PRODUCTION_KEY_ID, ...; a .env in the current directory too), and
  OAUTHTEST_BIN   the oauthtest binary to use [default: oauthtest on PATH; in an oauthtest
                  checkout without one, cargo build --release]
  CARGO           the cargo to run [default: cargo]

Install oauthtest once (it is cached by the CI templates in docs/ci/):
  cargo install --locked --git <oauthtest's repository URL> oauthtest
  cargo install --locked --path .      (in an oauthtest checkout)

Exit status: 0 every check passed, 1 a check failed, 2 usage error.
EOF
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${CARGO:=cargo}"
: "${OAUTHTEST_BIN:=}"
run_tests=false
check_endpoint=()
report="mock-all.xml"
scenarios=""
credential_id=""
repo=""
ignore_file=""

usage_error() {
  echo "pre_deploy_check.sh: $1 (see --help)" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --skip-tests) run_tests=false; shift ;;
    --oauthtest-tests) run_tests=true; shift ;;
    --check-endpoint) check_endpoint=(--check-endpoint); shift ;;
    --report | --scenarios | --credential-id | --repo | --secrets-ignore)
      [ $# -ge 2 ] || usage_error "$1 needs a value"
      case "$1" in
        --report) report="$2" ;;
        --scenarios) scenarios="$2" ;;
        --credential-id) credential_id="$2" ;;
        --repo) repo="$2" ;;
        --secrets-ignore) ignore_file="$2" ;;
      esac
      shift 2 ;;
    *) usage_error "unknown option $1" ;;
  esac
done
if [ -n "$credential_id" ] && ! [[ "$credential_id" =~ ^[0-9]+$ ]]; then
  usage_error "--credential-id must be a number, not '$credential_id'"
fi

passed=0
failed=0
skipped=0
pass() { printf 'PASS  %s\n' "$1"; passed=$((passed + 1)); }
fail() { printf 'FAIL  %s\n' "$1"; failed=$((failed + 1)); }
skip() { printf 'SKIP  %s\n' "$1"; skipped=$((skipped + 1)); }
detail() { sed 's/^/      /'; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- tools ---------------------------------------------------------------------------------------
need() { # NAME COMMAND INSTALL-HINT
  if command -v "$2" >/dev/null 2>&1; then
    pass "tool $1"
  else
    fail "tool $1: $2 not found; $3"
    return 1
  fi
}
have_git=true
need grep grep "install GNU grep (Debian/Ubuntu: apt-get install grep)" || true
need git git "install git (Debian/Ubuntu: apt-get install git; macOS: xcode-select --install)" \
  || have_git=false
# An oauthtest checkout (this script in its scripts/): the only place its tests or a build can run.
checkout=false
if grep -qs '^name = "oauthtest"$' "$root/Cargo.toml"; then checkout=true; fi
on_path=""
if [ -z "$OAUTHTEST_BIN" ]; then on_path=$(command -v oauthtest 2>/dev/null || true); fi
have_cargo=true
if $run_tests || { [ -z "$OAUTHTEST_BIN" ] && [ -z "$on_path" ] && $checkout; }; then
  need cargo "$CARGO" "install Rust with rustup: https://rustup.rs" || have_cargo=false
fi

# --- tests ---------------------------------------------------------------------------------------
if ! $run_tests; then
  skip "tests (oauthtest's own suite; --oauthtest-tests runs it)"
elif ! $checkout; then
  fail "tests: --oauthtest-tests needs this script inside an oauthtest checkout ($root is not one)"
elif ! $have_cargo; then
  fail "tests: not run, cargo is missing"
elif (cd "$root" && "$CARGO" test --workspace --locked) >"$work/tests.log" 2>&1; then
  total=$(awk '/^test result: ok\./ { n += $4 } END { print n + 0 }' "$work/tests.log")
  pass "tests: cargo test --workspace, $total passed"
else
  fail "tests: cargo test --workspace failed; its last lines:"
  tail -n 20 "$work/tests.log" | detail
fi

# --- the oauthtest binary ------------------------------------------------------------------------
bin=""
if [ -n "$OAUTHTEST_BIN" ]; then
  if [ -x "$OAUTHTEST_BIN" ]; then
    bin="$OAUTHTEST_BIN"
  else
    fail "tool oauthtest: OAUTHTEST_BIN=$OAUTHTEST_BIN is not an executable"
  fi
elif [ -n "$on_path" ]; then
  bin="$on_path"
elif ! $checkout; then
  fail "tool oauthtest: not on PATH and OAUTHTEST_BIN is not set; install it with \
cargo install --locked --git <oauthtest's repository URL> oauthtest"
elif $have_cargo; then
  if "$CARGO" build --release --locked --quiet --bin oauthtest \
    --manifest-path "$root/Cargo.toml" >"$work/build.log" 2>&1; then
    bin="${CARGO_TARGET_DIR:-$root/target}/release/oauthtest"
    pass "build: $bin"
  else
    fail "build: cargo build --release failed; its last lines:"
    tail -n 20 "$work/build.log" | detail
  fi
fi
no_bin() { fail "$1: not run, there is no oauthtest binary (see above)"; }

# --- mock-all ------------------------------------------------------------------------------------
if [ -z "$bin" ]; then
  no_bin "mock-all"
else
  mkdir -p "$(dirname "$report")"
  args=(--mode mock-all --report "$report")
  [ -z "$scenarios" ] || args+=(--scenarios "$scenarios")
  out=$("$bin" "${args[@]}" 2>&1) && rc=0 || rc=$?
  summary=$(printf '%s\n' "$out" | tail -n 1)
  if [ "$rc" -eq 0 ] && [ -s "$report" ]; then
    pass "mock-all: $summary; JUnit report $report"
  elif [ "$rc" -eq 0 ]; then
    fail "mock-all: passed, but wrote no JUnit report to $report"
  else
    fail "mock-all: $summary (exit $rc); JUnit report $report"
    printf '%s\n' "$out" | grep -E '^(FAIL |     |error: )' | detail || true
  fi
fi

# --- doctor: migrations and configuration --------------------------------------------------------
# Doctor prints one line per finding, "STATUS CHECK MESSAGE", a fix line under each problem.
finding_lines() { # "migrations": that finding; FAIL or WARN: the other findings with that status
  printf '%s\n' "$doctor" | awk -v want="$1" '
    /^(OK|WARN|FAIL|SKIP) / {
      if (want == "migrations") show = ($2 == "migrations")
      else show = ($2 != "migrations" && $1 == want)
    }
    show { print }'
}
if [ -z "$bin" ]; then
  no_bin "migrations"
  no_bin "configuration"
else
  # ${a[@]+"${a[@]}"}: an empty array under set -u, in the bash 3.2 macOS ships too.
  doctor=$("$bin" --mode doctor ${check_endpoint[@]+"${check_endpoint[@]}"} 2>&1) && rc=0 || rc=$?
  if [ "$rc" -gt 1 ]; then
    fail "migrations: not checked, oauthtest --mode doctor could not run (exit $rc)"
    fail "configuration: oauthtest --mode doctor could not run (exit $rc)"
    printf '%s\n' "$doctor" | detail
  else
    migrations=$(finding_lines migrations)
    status=${migrations%% *}
    message=$(printf '%s\n' "$migrations" | head -n 1 | sed -E 's/^[A-Z]+ +migrations +//')
    if [ "$status" = "OK" ]; then
      pass "migrations: $message"
    else
      fail "migrations: $message"
      printf '%s\n' "$migrations" | tail -n +2 | sed -E 's/^ +//' | detail
    fi
    problems=$(finding_lines FAIL)
    warnings=$(finding_lines WARN)
    if [ -z "$problems" ]; then
      pass "configuration: $(printf '%s\n' "$doctor" | tail -n 1)"
      [ -z "$warnings" ] || printf '%s\n' "$warnings" | detail
    else
      names=$(printf '%s\n' "$problems" | awk '/^FAIL / { printf "%s%s", sep, $2; sep = ", " }')
      fail "configuration: oauthtest --mode doctor found problems: $names"
      printf '%s\n' "$problems" | detail
    fi
  fi
fi

# --- a real credential, dry run --------------------------------------------------------------------
if [ -z "$credential_id" ]; then
  skip "credential (pass --credential-id N to dry-run a stored credential)"
elif [ -z "$bin" ]; then
  no_bin "credential $credential_id"
else
  out=$("$bin" --mode real --credential-id "$credential_id" --dry-run 2>&1) && rc=0 || rc=$?
  if [ "$rc" -eq 0 ]; then
    pass "credential $credential_id: oauthtest --mode real --dry-run: $(printf '%s\n' "$out" | head -n 1)"
  else
    fail "credential $credential_id: oauthtest --mode real --dry-run failed (exit $rc):"
    printf '%s\n' "$out" | tail -n 20 | detail
  fi
fi

# --- secrets -------------------------------------------------------------------------------------
kinds=("Google OAuth client secret" "Google access token" "Google refresh token" "private key")
patterns=(
  'GOCSPX-[A-Za-z0-9_-]{28}'
  'ya29\.[A-Za-z0-9_-]{30,}'
  '1//0[A-Za-z0-9_-]{30,}'
  '-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----'
)
scan_secrets() {
  local dir=$1 ignore=$2 globs=() files=() path glob keep i file rest
  if [ -f "$ignore" ]; then
    while IFS= read -r glob || [ -n "$glob" ]; do
      glob="${glob%%#*}"
      glob="${glob#"${glob%%[![:space:]]*}"}"
      glob="${glob%"${glob##*[![:space:]]}"}"
      [ -z "$glob" ] || globs+=("$glob")
    done <"$ignore"
  fi
  while IFS= read -r -d '' path; do
    path="${path#./}"
    # .oauthtest/: where the CI templates cache the installed binary.
    case "$path" in target/* | */target/* | .git/* | */.git/* | .oauthtest/*) continue ;; esac
    keep=true
    for glob in ${globs[@]+"${globs[@]}"}; do
      # shellcheck disable=SC2053 # the glob is meant to match as a pattern
      if [[ "$path" == $glob || "$path" == ${glob%/}/* ]]; then keep=false; break; fi
    done
    if $keep && [ -f "$dir/$path" ]; then files+=("$path"); fi
  done < <(
    if $have_git && git -C "$dir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
      git -C "$dir" ls-files -z --cached --others --exclude-standard
    else
      (cd "$dir" && find . -type f -print0)
    fi
  )
  scanned=${#files[@]}
  hits=()
  [ "$scanned" -gt 0 ] || return 0
  for i in "${!kinds[@]}"; do
    # Only the file name and line number are read back: the matching text is never printed.
    while IFS= read -r -d '' file && IFS= read -r rest; do
      hits+=("$file:${rest%%:*}: ${kinds[$i]}")
    done < <(cd "$dir" && printf '%s\0' "${files[@]}" \
      | xargs -0 grep -IHnE --null -e "${patterns[$i]}" -- 2>/dev/null)
  done
}
if [ -z "$repo" ]; then
  repo=$(git rev-parse --show-toplevel 2>/dev/null) || repo=""
fi
if [ -z "$repo" ]; then
  fail "secrets: the current directory is not in a git repository; pass --repo DIR"
elif [ ! -d "$repo" ]; then
  fail "secrets: --repo $repo is not a directory"
else
  [ -n "$ignore_file" ] || ignore_file="$repo/.oauthtest-secrets-ignore"
  scan_secrets "$repo" "$ignore_file"
  if [ "${#hits[@]}" -eq 0 ]; then
    pass "secrets: none found in $repo ($scanned files scanned)"
  else
    fail "secrets: ${#hits[@]} possible secret(s) in $repo ($scanned files scanned):"
    printf '%s\n' "${hits[@]}" | detail
    echo "remove them (and revoke any that were real), or list fixtures in $ignore_file" | detail
  fi
fi

echo "pre-deploy: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
