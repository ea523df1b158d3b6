#!/usr/bin/env python3
"""Refresh code written with Google's own library (google-auth), judged by oauthtest:

    python3 -m pip install google-auth requests
    oauthtest --mode mock-all --target-cmd 'python3 examples/google_auth_client.py'

It builds the credential the scenario says the application stored, lets google-auth refresh
it when needed, and calls the Gmail profile API. Exit 0 only when that call works.
"""
import datetime
import os
import sys

import google.auth.exceptions
from google.auth.transport.requests import AuthorizedSession
from google.oauth2.credentials import Credentials

env = os.environ
expires_at = env.get("OAUTHTEST_ACCESS_TOKEN_EXPIRES_AT")
credentials = Credentials(
    token=env.get("OAUTHTEST_ACCESS_TOKEN"),
    expiry=(
        datetime.datetime.fromtimestamp(int(expires_at), datetime.timezone.utc).replace(tzinfo=None)
        if expires_at
        else None
    ),
    refresh_token=env["OAUTHTEST_REFRESH_TOKEN"],
    token_uri=env["OAUTHTEST_TOKEN_URL"],
    client_id=env["OAUTHTEST_CLIENT_ID"],
    client_secret=env["OAUTHTEST_CLIENT_SECRET"],
)
try:
    response = AuthorizedSession(credentials).get(env["OAUTHTEST_API_URL"], timeout=10)
except google.auth.exceptions.GoogleAuthError as error:
    print(f"{type(error).__name__}: {error}", file=sys.stderr)
    sys.exit(2)
print(f"API answered {response.status_code}", file=sys.stderr)
sys.exit(0 if response.status_code == 200 else 3)
