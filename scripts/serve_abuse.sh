#!/usr/bin/env bash
# The long version of serve's abuse test (the CI-sized one is tests/cli/serve_abuse.rs): minutes
# of mixed abuse against one `oauthtest --mode serve` (release build), then proof it still works.
#
#   scripts/serve_abuse.sh                       # 120 s of mixed abuse
#   DURATION=600 SLOWLORIS=1500 scripts/serve_abuse.sh
#
# Phases: (1) IDLE idle connections at once, past the 4,096-connection cap: serve must never
# hold more than the cap, a new client must still be served once idle ones time out, and every
# one must be let go; (2) the journal filled to its 100,000-request capacity, then concurrent
# admin listings of it; (3) DURATION seconds of everything at once: SLOWLORIS connections
# trickling headers forever (replaced as serve cuts them off), garbage bytes, mangled requests,
# oversized bodies and headers, bad chunked bodies, clients vanishing mid-request, admin requests a
# hostile web page could send (text/plain or form POSTs to mint tokens and reset the mock, a
# rebound Host, a clock advance of 2^64-1 seconds: every one must be refused), and normal clients
# refreshing and using their tokens throughout (each its own grant, as an app does). serve's RSS
# and open descriptors are sampled every 0.2 s. Prints the figures; exits 1 if serve died, a
# normal refresh failed, an admin request that should be refused was not, or RSS went over
# RSS_BOUND_MIB.
set -euo pipefail

: "${DURATION:=120}"
: "${IDLE:=4600}"
: "${SLOWLORIS:=800}"
: "${GARBAGE_THREADS:=4}"
: "${CLIENT_THREADS:=4}"
: "${READ_TIMEOUT_MS:=2000}"
: "${RSS_BOUND_MIB:=200}"
: "${OAUTHTEST_BIN:=}"
: "${CARGO:=cargo}"
export DURATION IDLE SLOWLORIS GARBAGE_THREADS CLIENT_THREADS READ_TIMEOUT_MS RSS_BOUND_MIB

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is not installed; $2" >&2; exit 2; }
}
need python3 "install it with: apt-get install python3 (the driver uses the standard library only)"

cd "$(dirname "$0")/.."
if [[ -z "$OAUTHTEST_BIN" ]]; then
  need "$CARGO" "install Rust (https://rustup.rs), or set OAUTHTEST_BIN to a built oauthtest"
  echo "building oauthtest (release)"
  "$CARGO" build --release --quiet
  OAUTHTEST_BIN=target/release/oauthtest
fi

# Sockets on both sides: the driver's and serve's (serve inherits this shell's limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "machine: $(nproc) cores, $(free -m | awk '/^Mem:/ {print $2}') MiB RAM; open-file limit $(ulimit -n)"

work=$(mktemp -d)
serve_pid=
cleanup() {
  if [[ -n "$serve_pid" ]]; then kill "$serve_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$OAUTHTEST_BIN" --mode serve --port 0 --log warn --read-timeout-ms "$READ_TIMEOUT_MS" \
  >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
for _ in $(seq 1 100); do
  url=$(head -n1 "$work/serve.out" 2>/dev/null || true)
  [[ "$url" == http://* ]] && break
  sleep 0.1
done
[[ "$url" == http://* ]] || { echo "error: serve printed no URL" >&2; cat "$work/serve.err" >&2; exit 3; }
echo "serve at $url (pid $serve_pid), read timeout $READ_TIMEOUT_MS ms"

set +e
python3 - "$url" "$serve_pid" <<'PY'
import json, os, random, socket, sys, threading, time, urllib.request

url, pid = sys.argv[1], int(sys.argv[2])
host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)[0], int(url.rsplit(":", 1)[1])
env = lambda k: int(os.environ.get(k, "0"))
DURATION, IDLE, SLOWLORIS = env("DURATION"), env("IDLE"), env("SLOWLORIS")
GARBAGE_THREADS, CLIENT_THREADS = env("GARBAGE_THREADS"), env("CLIENT_THREADS")
TIMEOUT = env("READ_TIMEOUT_MS") / 1000
CAP, JOURNAL = 4096, 100_000
CLIENT = ("mock-client-id.apps.googleusercontent.com", "mock-client-secret")

stats = {"connections": 0, "refreshes": 0, "refresh_failures": 0, "garbage": 0,
         "slowloris_cut": 0, "answers_5xx": 0, "admin_listings": 0, "hostile_admin": 0,
         "hostile_admin_not_refused": 0}
lock = threading.Lock()
def count(key, n=1):
    with lock:
        stats[key] += n

def proc(field):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        return None
def fds():
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
peak = {"rss_kib": 0, "fds": 0}
stop_sampling = threading.Event()
def sampler():
    while not stop_sampling.is_set():
        r, f = proc("VmRSS"), fds()
        if r is None:
            return
        peak["rss_kib"] = max(peak["rss_kib"], r)
        peak["fds"] = max(peak["fds"], f or 0)
        time.sleep(0.2)
threading.Thread(target=sampler, daemon=True).start()

def connect():
    count("connections")
    return socket.create_connection((host, port), timeout=30)

def http(method, path, body=None, timeout=30):
    # serve refuses admin requests that change something unless they are declared JSON.
    headers = {"Content-Type": "application/json"} if method not in ("GET", "HEAD") else {}
    req = urllib.request.Request(url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            count("connections")
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        count("connections")
        return e.code, json.loads(e.read() or b"{}")

def mint():
    return http("POST", "/__admin/refresh-tokens", b"{}")[1]["refresh_token"]

def normal_refresh(refresh_token=None):
    """A normal client: refresh (with a fresh grant unless given one), use the token. True when
    all of it worked."""
    try:
        refresh_token = refresh_token or mint()
        form = (f"grant_type=refresh_token&refresh_token={refresh_token}"
                f"&client_id={CLIENT[0]}&client_secret={CLIENT[1]}").encode()
        status, body = http("POST", "/token", form)
        if status != 200:
            return False
        req = urllib.request.Request(url + "/gmail/v1/users/me/profile",
                                     headers={"Authorization": "Bearer " + body["access_token"]})
        with urllib.request.urlopen(req, timeout=30) as r:
            count("connections")
            return r.status == 200
    except Exception as e:  # noqa: BLE001 - any failure of a normal client counts
        print(f"  a normal refresh failed: {e!r}", file=sys.stderr)
        return False

baseline_fds = fds()
print(f"serve idles at {proc('VmRSS')} KiB, {baseline_fds} descriptors")

# (1) Idle connections past the cap.
t0 = time.time()
idle = []
for _ in range(IDLE):
    try:
        idle.append(connect())
    except OSError as e:
        print(f"  connect failed after {len(idle)}: {e}", file=sys.stderr)
        break
opened_in = time.time() - t0
waited = time.time()
first_ok = normal_refresh()
waited = time.time() - waited
deadline = time.time() + 2 * TIMEOUT + 30
for s in idle:
    s.setblocking(False)
while True:
    open_now = 0
    for s in idle:
        try:
            if s.recv(1) != b"":
                open_now += 1
        except BlockingIOError:
            open_now += 1
        except OSError:
            pass
    if open_now == 0 or time.time() > deadline:
        break
    time.sleep(0.5)
for s in idle:
    s.close()
print(f"phase 1: {len(idle)} idle connections opened in {opened_in:.1f} s; at most "
      f"{peak['fds'] - baseline_fds} held at once (cap {CAP}); a new client "
      f"{'was served' if first_ok else 'FAILED'} after {waited:.2f} s; {open_now} never let go")
phase1_ok = first_ok and open_now == 0 and peak["fds"] - baseline_fds <= CAP

# (2) The journal at capacity, then concurrent admin listings of it.
t0 = time.time()
def fill(n):
    s = connect()
    req = b"GET /tokeninfo?access_token=x HTTP/1.1\r\nHost: x\r\n\r\n"
    seen, tail = 0, b""
    for _ in range(n // 500):
        s.sendall(req * 500)
        while seen < 500:
            data = s.recv(1 << 20)
            if not data:
                raise RuntimeError("closed while filling the journal")
            tail += data
            seen += tail.count(b"HTTP/1.1 ")
            tail = tail[-8:]
        seen -= 500
    s.close()
fillers = [threading.Thread(target=fill, args=(JOURNAL // 4,)) for _ in range(4)]
for t in fillers: t.start()
for t in fillers: t.join()
rss_full = proc("VmRSS")
def list_journal():
    status, page = http("GET", "/__admin/requests?limit=10000")
    if status == 200 and page["count"] == 10000:
        count("admin_listings")
listers = [threading.Thread(target=list_journal) for _ in range(16)]
for t in listers: t.start()
for t in listers: t.join()
print(f"phase 2: journal filled with {JOURNAL} requests in {time.time() - t0:.1f} s "
      f"(RSS {rss_full} KiB); {stats['admin_listings']} of 16 concurrent listings of "
      f"10,000 entries answered; peak RSS so far {peak['rss_kib']} KiB")

# (3) Everything at once.
end = time.time() + DURATION
post = b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
valid = post + b"Content-Length: 19\r\n\r\ngrant_type=password"
nasty = [
    post + b"Content-Length: 500000000\r\n\r\n",
    post + b"Transfer-Encoding: chunked\r\n\r\n" + b"ffff\r\n" + b"a" * 65535 + b"\r\n" + b"ffff\r\n" + b"a" * 65535,
    b"GET /tokeninfo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 40000 + b"\r\n\r\n",
    post + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    post + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    post + b"Content-Length: 100\r\n\r\ngrant_type=refr",
]

def garbage_worker(seed):
    rng = random.Random(seed)
    while time.time() < end:
        kind = rng.random()
        if kind < 0.4:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 4096)))
        elif kind < 0.7:
            data = bytearray(valid)
            for _ in range(rng.randrange(1, 8)):
                data[rng.randrange(len(data))] = rng.getrandbits(8)
            data = bytes(data)
        else:
            data = rng.choice(nasty)
        try:
            s = connect()
            s.settimeout(TIMEOUT + 5)
            s.sendall(data)
            if rng.random() < 0.5:
                s.shutdown(socket.SHUT_WR)  # else: vanish mid-request
                answer = s.recv(64)
                if answer.startswith(b"HTTP/1.1 5"):
                    count("answers_5xx")
            s.close()
        except OSError:
            pass  # serve cut it off, as it may
        count("garbage")

def slowloris_worker(n):
    socks = []
    while time.time() < end:
        while len(socks) < n:
            try:
                s = connect()
                s.setblocking(False)
                s.send(b"POST /token HTTP/1.1\r\nX-Slow: ")
                socks.append(s)
            except OSError:
                break
        alive = []
        for s in socks:
            try:
                s.send(b"X")
                alive.append(s)
            except OSError:
                count("slowloris_cut")
                s.close()
        socks = alive
        time.sleep(0.2)
    for s in socks:
        s.close()

def hostile_admin_worker(seed):
    # What a web page can make a browser send, and a clock value that once disabled the mock.
    rng = random.Random(seed)
    here = f"{host}:{port}"
    cases = [
        ("POST", "/__admin/reset", here, "text/plain", b"{}", 415),
        ("POST", "/__admin/refresh-tokens", here, "application/x-www-form-urlencoded", b"a=b", 415),
        ("POST", "/__admin/scenario", here, None, b'{"name":"invalid_grant_revoked"}', 415),
        ("POST", "/__admin/reset", f"rebound.evil.example:{port}", "application/json", b"", 403),
        ("GET", "/__admin/scenario", "evil.example", None, b"", 403),
        ("POST", "/__admin/clock", here, "application/json", b'{"advance_seconds":18446744073709551615}', 400),
    ]
    while time.time() < end:
        method, path, host_header, content_type, body, expected = rng.choice(cases)
        request = f"{method} {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n"
        if content_type:
            request += f"Content-Type: {content_type}\r\n"
        request = request.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        try:
            s = connect()
            s.settimeout(TIMEOUT + 5)
            s.sendall(request)
            status = s.recv(64)[9:12]
            s.close()
        except OSError:
            continue
        count("hostile_admin")
        if status != str(expected).encode():
            count("hostile_admin_not_refused")
        time.sleep(0.01)

def client_worker():
    # One grant per client, refreshed over and over, as an app does: the mock keeps a grant's
    # latest 1,000 tokens, so its state stays flat and any growth in RSS would be a leak.
    refresh_token = mint()
    while time.time() < end:
        if normal_refresh(refresh_token):
            count("refreshes")
        else:
            count("refresh_failures")

workers = [threading.Thread(target=garbage_worker, args=(i,)) for i in range(GARBAGE_THREADS)]
workers += [threading.Thread(target=slowloris_worker, args=(SLOWLORIS // 2,)) for _ in range(2)]
workers += [threading.Thread(target=client_worker) for _ in range(CLIENT_THREADS)]
workers += [threading.Thread(target=hostile_admin_worker, args=(100,))]
t0 = time.time()
for t in workers: t.start()
rss_over_time = []
while time.time() < end:
    time.sleep(max(1, DURATION // 10))
    rss_over_time.append(proc("VmRSS"))
for t in workers: t.join()
print(f"phase 3: {DURATION} s of mixed abuse: {stats['garbage']} garbage/oversized/cut-short "
      f"requests, {stats['slowloris_cut']} slowloris connections cut off ({SLOWLORIS} kept open), "
      f"{stats['refreshes']} normal refreshes ok, {stats['refresh_failures']} failed, "
      f"{stats['answers_5xx']} 5xx answers to garbage, {stats['hostile_admin']} hostile admin "
      f"requests ({stats['hostile_admin_not_refused']} not refused); RSS over time (KiB): {rss_over_time}")

time.sleep(TIMEOUT + 1)
final_ok = normal_refresh()
alive = proc("VmRSS") is not None
stop_sampling.set()
print(f"end: serve {'up' if alive else 'DEAD'}, a normal refresh at the end "
      f"{'worked' if final_ok else 'FAILED'}; {stats['connections']} connections in all; "
      f"max RSS {peak['rss_kib']} KiB ({peak['rss_kib'] // 1024} MiB), "
      f"max descriptors {peak['fds']}, RSS now {proc('VmRSS')} KiB")
bound = int(os.environ["RSS_BOUND_MIB"]) * 1024
ok = (phase1_ok and alive and final_ok and stats["refresh_failures"] == 0
      and stats["answers_5xx"] == 0 and stats["hostile_admin_not_refused"] == 0
      and stats["hostile_admin"] > 0 and peak["rss_kib"] < bound)
print("PASS" if ok else "FAIL", f"(RSS bound {bound // 1024} MiB)")
sys.exit(0 if ok else 1)
PY
status=$?
set -e
if ! kill -0 "$serve_pid" 2>/dev/null; then
  echo "serve died; its stderr:" >&2
  tail -n 20 "$work/serve.err" >&2
  exit 1
fi
kill -TERM "$serve_pid"
wait "$serve_pid" || true
serve_pid=
if grep -q panicked "$work/serve.err"; then
  echo "serve panicked:" >&2
  grep -m3 panicked "$work/serve.err" >&2
  exit 1
fi
exit "$status"
