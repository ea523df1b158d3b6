#!/usr/bin/env python3
"""A refresh client that keeps its credential in the application's own table, standard library
plus `cryptography` (and `psycopg` on PostgreSQL).

Run by `oauthtest --mode mock-all --target-cmd 'python3 tests/python/store_client.py'` with a
store config (see tests/cli/app_scenarios.rs): it loads row OAUTHTEST_CREDENTIAL_ID of the
`credentials` table (Fernet-sealed JSON, oauthtest's `fernet` preset; key in
APP_ENCRYPTION_KEY, database in DATABASE_URL), refreshes when the access token is missing or
expired (the same rules as refresh_client.py: temporary failures retried three tries in all,
final answers not), writes the new access token, expiry and any rotated refresh token back,
marks `status = 'needs_reconnect'` on invalid_grant, calls the API and on a 401 refreshes once
more with the refresh token the row holds now. Exit 0 only when the API call worked.

`--bug NAME` makes it one of the broken clients the tests prove oauthtest catches:
  no-save-rotation      keeps the refresh token it started with (a rotated one is lost)
  reuse-old-token       refreshes again with the refresh token it read first
  retry-invalid-grant   retries invalid_grant and never marks the row
  revoke-on-exit        "logs out" when done: revokes the refresh token it holds
  mark-on-any-failure   marks the row for reconnection on any failed refresh (a 503 too)
  no-write-back         never writes the refreshed token back
  accept-any-200        takes a 200 without access_token or expires_in as a token (and does
                        not refresh on a 401)
  past-expiry           writes the new token back with an expiry in the past
  corrupt-row           overwrites the row with a value that does not decrypt
"""
import datetime
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from cryptography.fernet import Fernet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refresh_client import call_api  # noqa: E402  (the same API call as the env-only client)

ATTEMPTS = 3
TIMEOUT_S = 5.0
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
BUG = sys.argv[sys.argv.index("--bug") + 1] if "--bug" in sys.argv else None


class Failed(Exception):
    def __init__(self, reason, error=None):
        super().__init__(reason)
        self.error = error


class Table:
    def __init__(self, url):
        if url.startswith("sqlite:"):
            import sqlite3

            path = url[len("sqlite:"):].lstrip("/")
            self.conn = sqlite3.connect("/" + path if not path.startswith(".") else path)
            self.slot = "?"
        else:
            import psycopg

            self.conn = psycopg.connect(url, autocommit=True)
            self.slot = "%s"

    def run(self, sql, *params):
        cursor = self.conn.execute(sql.replace("?", self.slot), params)
        rows = cursor.fetchall() if cursor.description else []
        self.conn.commit()
        return rows

    def load(self, row_id):
        sealed, status = self.run(
            "SELECT encrypted_data, status FROM credentials WHERE id = ?", int(row_id)
        )[0]
        return json.loads(FERNET.decrypt(sealed.encode())), status

    def save(self, row_id, payload):
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        sealed = FERNET.encrypt(json.dumps(payload).encode()).decode()
        self.run(
            "UPDATE credentials SET encrypted_data = ?, updated_at = ? WHERE id = ?",
            sealed, now, int(row_id),
        )

    def mark(self, row_id):
        self.run("UPDATE credentials SET status = 'needs_reconnect' WHERE id = ?", int(row_id))


FERNET = Fernet(os.environ["APP_ENCRYPTION_KEY"].encode())


def post(url, form):
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode())
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def refresh(payload, refresh_token):
    """The token endpoint's answer for `refresh_token`, or Failed."""
    for attempt in range(1, ATTEMPTS + 1):
        wait = 0.2 * 2 ** (attempt - 1)
        try:
            status, headers, body = post(os.environ["OAUTHTEST_TOKEN_URL"], {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": payload["client_id"],
                "client_secret": payload["client_secret"],
            })
        except OSError as error:
            print(f"token request failed: {error}", file=sys.stderr)
        else:
            try:
                answer = json.loads(body)
            except ValueError:
                answer = {}
            if status == 200:
                if BUG == "accept-any-200":
                    answer.setdefault("access_token", "ya29.unusable")
                    answer.setdefault("expires_in", 3600)
                if not isinstance(answer.get("access_token"), str) or type(answer.get("expires_in")) is not int:
                    raise Failed("200 without a usable token")
                return answer
            error = answer.get("error")
            print(f"token endpoint answered {status} {error}", file=sys.stderr)
            html_403 = status == 403 and not answer  # Google's "Sorry..." page: throttling
            retry = status in RETRY_STATUSES or html_403
            if not retry and not (BUG == "retry-invalid-grant" and error == "invalid_grant"):
                raise Failed(f"token endpoint answered {status}", error)
            retry_after = headers.get("retry-after", "")
            if retry_after.isdigit():
                wait = min(int(retry_after), 5)
        if attempt < ATTEMPTS:
            time.sleep(wait)
    raise Failed("retries ran out")


def expired(payload):
    expiry = payload.get("expiry")
    if not payload.get("access_token") or not expiry:
        return True
    at = datetime.datetime.fromisoformat(expiry.replace("Z", "+00:00"))
    return at.timestamp() <= time.time() + 60


def main():
    table = Table(os.environ["DATABASE_URL"])
    row_id = os.environ["OAUTHTEST_CREDENTIAL_ID"]
    payload, status = table.load(row_id)
    if status == "needs_reconnect":
        print("the user must reconnect", file=sys.stderr)
        return 3
    first_refresh_token = payload["refresh_token"]

    def renew():
        nonlocal payload
        if BUG != "reuse-old-token":
            payload, _ = table.load(row_id)
        used = first_refresh_token if BUG == "reuse-old-token" else payload["refresh_token"]
        try:
            answer = refresh(payload, used)
        except Failed as failure:
            if failure.error == "invalid_grant" and BUG != "retry-invalid-grant" or BUG == "mark-on-any-failure":
                table.mark(row_id)
            raise
        payload["access_token"] = answer["access_token"]
        payload["expiry"] = (
            datetime.datetime.now(datetime.timezone.utc)
            + datetime.timedelta(seconds=answer["expires_in"])
        ).isoformat()
        if "refresh_token" in answer and BUG != "no-save-rotation":
            payload["refresh_token"] = answer["refresh_token"]
        if BUG == "past-expiry":
            payload["expiry"] = "2001-01-01T00:00:00+00:00"
        if BUG == "corrupt-row":
            table.run("UPDATE credentials SET encrypted_data = 'not-fernet' WHERE id = ?", int(row_id))
        elif BUG != "no-write-back":
            table.save(row_id, payload)

    try:
        if expired(payload):
            renew()
        status = call_api(payload["access_token"])
        if status == 401 and BUG != "accept-any-200":
            renew()
            status = call_api(payload["access_token"])
    except Failed as failure:
        print(f"refresh failed: {failure}", file=sys.stderr)
        return 2
    print(f"API answered {status}", file=sys.stderr)
    if BUG == "revoke-on-exit":
        post(os.environ["OAUTHTEST_REVOKE_URL"], {"token": payload["refresh_token"]})
    return 0 if status == 200 else 3


if __name__ == "__main__":
    sys.exit(main())
