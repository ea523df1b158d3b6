#!/usr/bin/env python3
"""A refresh client written the way oauthtest's scenarios call correct, standard library only.

Run by `oauthtest --mode mock-all --target-cmd 'python3 tests/python/refresh_client.py'` (see
tests/cli/serve.rs). It reads the OAUTHTEST_* variables, refreshes when the stored access token
is missing or expired, retries what is temporary (5xx, 408, 429 honouring Retry-After, an HTML
403, a timeout, a dropped connection) three tries in all, stops at the first final answer
(invalid_grant, invalid_client, ...), refuses a 200 that is not a usable token, calls the API and
refreshes once on a 401. Exit 0 only when the API call worked.

With --retry-everything it is the classic bug instead: every failure is retried, invalid_grant
included. With --trust-expiry it is another: a token that is not expired by its stored expiry is
trusted, so a 401 is not answered with a refresh (and a revoked grant goes unnoticed).
"""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ATTEMPTS = 3
TIMEOUT_S = 5.0
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
RETRY_ERRORS = {"internal_failure", "server_error", "temporarily_unavailable"}
RETRY_EVERYTHING = "--retry-everything" in sys.argv[1:]
TRUST_EXPIRY = "--trust-expiry" in sys.argv[1:]


class Final(Exception):
    """A refresh that must not be retried."""


def post_token(refresh_token):
    body = urllib.parse.urlencode(
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": os.environ["OAUTHTEST_CLIENT_ID"],
            "client_secret": os.environ["OAUTHTEST_CLIENT_SECRET"],
        }
    ).encode()
    request = urllib.request.Request(os.environ["OAUTHTEST_TOKEN_URL"], data=body)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def retryable(status, body):
    if RETRY_EVERYTHING or status in RETRY_STATUSES:
        return True
    try:
        error = json.loads(body).get("error")
    except ValueError:
        return status == 403  # Google's HTML "Sorry..." page: throttling, not a dead token
    return error in RETRY_ERRORS


def refresh(state):
    for attempt in range(1, ATTEMPTS + 1):
        wait = 0.2 * 2 ** (attempt - 1)
        try:
            status, headers, body = post_token(state["refresh_token"])
        except OSError as error:  # timeout, reset, refused
            print(f"token request failed: {error}", file=sys.stderr)
        else:
            if status == 200:
                try:
                    answer = json.loads(body)
                except ValueError:
                    raise Final("200 with a body that is not JSON")
                if not isinstance(answer.get("access_token"), str):
                    raise Final("200 without access_token")
                if type(answer.get("expires_in")) is not int:
                    raise Final("200 without a numeric expires_in")
                state["access_token"] = answer["access_token"]
                state["refresh_token"] = answer.get("refresh_token", state["refresh_token"])
                return
            print(f"token endpoint answered {status}", file=sys.stderr)
            if not retryable(status, body):
                raise Final(f"token endpoint answered {status}: not retried")
            retry_after = {k.lower(): v for k, v in headers.items()}.get("retry-after")
            if retry_after and retry_after.isdigit():
                wait = min(int(retry_after), 5)
        if attempt < ATTEMPTS:
            time.sleep(wait)
    raise Final("retries ran out")


def call_api(access_token):
    request = urllib.request.Request(
        os.environ["OAUTHTEST_API_URL"], headers={"Authorization": f"Bearer {access_token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main():
    state = {
        "refresh_token": os.environ["OAUTHTEST_REFRESH_TOKEN"],
        "access_token": os.environ.get("OAUTHTEST_ACCESS_TOKEN"),
    }
    expires_at = int(os.environ.get("OAUTHTEST_ACCESS_TOKEN_EXPIRES_AT", "0"))
    try:
        if not state["access_token"] or expires_at <= time.time() + 60:
            refresh(state)
        status = call_api(state["access_token"])
        if status == 401 and not TRUST_EXPIRY:
            refresh(state)
            status = call_api(state["access_token"])
    except Final as reason:
        print(f"refresh failed: {reason}", file=sys.stderr)
        return 2
    print(f"API answered {status}", file=sys.stderr)
    return 0 if status == 200 else 3


if __name__ == "__main__":
    sys.exit(main())
