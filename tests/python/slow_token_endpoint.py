"""``python3 slow_token_endpoint.py DELAY_MS CMD...``: runs CMD with ``OAUTHTEST_TOKEN_URL``
pointing at a local relay that forwards each token request to the real one after DELAY_MS, so
the token endpoint answers as slowly as a distant Google would. The delay comes before the
request is forwarded: the token's lifetime, counted by the mock from its answer, is not eaten.

A test harness (oauthtest's own tests): with slow answers, workers that do not coordinate
surely all read an expired row before the first refresh is written back, however loaded the
machine, so the refresh storm they cause is seen every run. Exits with CMD's status.
Prints nothing it relays (no token, no secret).
"""

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def relay(upstream, delay):
    class Relay(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(delay)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            request = urllib.request.Request(upstream, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    status, answer_headers, data = answer.status, answer.headers, answer.read()
            except urllib.error.HTTPError as answer:
                status, answer_headers, data = answer.code, answer.headers, answer.read()
            self.send_response(status)
            for k, v in answer_headers.items():
                if k.lower() not in HOP_HEADERS and k.lower() not in ("date", "server"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Relay


def main(argv):
    if len(argv) < 3 or not argv[1].isdigit():
        print("usage: slow_token_endpoint.py DELAY_MS CMD...", file=sys.stderr)
        return 2
    upstream = os.environ["OAUTHTEST_TOKEN_URL"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), relay(upstream, int(argv[1]) / 1000))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env["OAUTHTEST_TOKEN_URL"] = f"http://127.0.0.1:{server.server_port}/token"
    child = subprocess.Popen(argv[2:], env=env)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
