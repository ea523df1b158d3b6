#!/usr/bin/env python3
"""Google's own Python client library (google-auth) against `oauthtest --mode serve`.

Usage: python3 tests/python/google_auth_check.py BASE_URL

Run by tests/cli/serve.rs. Each check drives the server through its admin API, lets google-auth
do what it does against Google, and asserts the outcome and the exception type the library
raises. Prints one PASS line per check; any failure ends with a traceback and a non-zero exit.
"""
import json
import sys
import urllib.request

import google.auth.exceptions
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2.credentials import Credentials

BASE = sys.argv[1].rstrip("/")
CLIENT_ID = "mock-client-id.apps.googleusercontent.com"
CLIENT_SECRET = "mock-client-secret"
API = f"{BASE}/gmail/v1/users/me/profile"


def admin(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    # serve refuses admin requests that change something unless they are declared JSON.
    headers = {} if method in ("GET", "HEAD") else {"Content-Type": "application/json"}
    request = urllib.request.Request(
        f"{BASE}/__admin/{path}", data=data, method=method, headers=headers
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def token_requests():
    return admin("GET", "requests?endpoint=token")["count"]


def credentials(refresh_token, client_id=CLIENT_ID, client_secret=CLIENT_SECRET):
    return Credentials(
        token=None,
        refresh_token=refresh_token,
        token_uri=f"{BASE}/token",
        client_id=client_id,
        client_secret=client_secret,
    )


def scenario(name):
    return admin("POST", "scenario", {"name": name})["credential"]


def expect_refresh_error(creds):
    try:
        creds.refresh(Request())
    except google.auth.exceptions.RefreshError as error:
        return error
    raise AssertionError("google-auth did not raise RefreshError")


def check_refresh_succeeds_and_the_api_accepts_the_token():
    admin("POST", "reset")
    minted = admin("POST", "refresh-tokens", {})
    creds = credentials(minted["refresh_token"])
    creds.refresh(Request())
    assert creds.valid and creds.token.startswith("ya29."), creds.token[:5]
    assert creds.expiry is not None
    profile = AuthorizedSession(creds).get(API, timeout=10)
    assert profile.status_code == 200, profile.status_code
    assert profile.json()["emailAddress"] == "test-user@example.com"
    info = AuthorizedSession(creds).get(f"{BASE}/tokeninfo", params={"access_token": creds.token})
    assert info.json()["aud"] == CLIENT_ID, info.text
    assert token_requests() == 1


def check_an_expired_token_is_refreshed_on_401():
    admin("POST", "reset")
    creds = credentials(admin("POST", "refresh-tokens", {})["refresh_token"])
    session = AuthorizedSession(creds)
    assert session.get(API, timeout=10).status_code == 200
    admin("POST", "clock", {"advance_seconds": 3600})
    # google-auth still believes its token valid (its own clock did not move): the API's 401
    # makes it refresh and retry, as against Google.
    assert session.get(API, timeout=10).status_code == 200
    assert token_requests() == 2


def check_invalid_grant_raises_refresh_error_without_retrying():
    creds = credentials(**{"refresh_token": scenario("invalid_grant_revoked")["refresh_token"]})
    error = expect_refresh_error(creds)
    assert "invalid_grant" in str(error), str(error)
    assert error.retryable is False
    assert token_requests() == 1


def check_invalid_client_raises_refresh_error():
    given = scenario("invalid_client_wrong_secret")
    error = expect_refresh_error(
        credentials(given["refresh_token"], given["client_id"], given["client_secret"])
    )
    assert "invalid_client" in str(error), str(error)
    assert error.retryable is False
    assert token_requests() == 1


def check_5xx_is_retried_then_raises_a_retryable_refresh_error():
    error = expect_refresh_error(
        credentials(scenario("unavailable_until_retries_run_out")["refresh_token"])
    )
    assert "internal_failure" in str(error), str(error)
    assert error.retryable is True
    assert token_requests() == 3, token_requests()


def check_one_500_is_retried_and_the_refresh_succeeds():
    creds = credentials(scenario("server_error_then_success")["refresh_token"])
    creds.refresh(Request())
    assert creds.valid
    assert token_requests() == 2


for check in [
    check_refresh_succeeds_and_the_api_accepts_the_token,
    check_an_expired_token_is_refreshed_on_401,
    check_invalid_grant_raises_refresh_error_without_retrying,
    check_invalid_client_raises_refresh_error,
    check_5xx_is_retried_then_raises_a_retryable_refresh_error,
    check_one_500_is_retried_and_the_refresh_succeeds,
]:
    check()
    print(f"PASS {check.__name__}", flush=True)
