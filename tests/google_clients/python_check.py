#!/usr/bin/env python3
"""Google's own Python libraries (google-auth, google-auth-oauthlib) against `oauthtest --mode serve`.

Usage: python3 tests/google_clients/python_check.py BASE_URL

Run by tests/cli/google_clients.rs, over http:// and over https:// (`--tls`, the CA trusted
through REQUESTS_CA_BUNDLE, nothing insecure). Each check drives the server through its admin
API, uses the library the way an application does against Google, and asserts the outcome or the
exception the library raises. Prints one PASS line per check; a failure ends with a traceback and
a non-zero exit.
"""
import base64
import json
import os
import sys
from urllib.parse import parse_qs, urlsplit

import requests

BASE = sys.argv[1].rstrip("/")
if BASE.startswith("http://"):
    # oauthlib refuses plain-HTTP token URLs; over --tls this is not needed.
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

import google.auth.exceptions  # noqa: E402
from google.auth.transport.requests import AuthorizedSession, Request  # noqa: E402
from google.oauth2 import id_token as google_id_token  # noqa: E402
from google.oauth2 import service_account  # noqa: E402
from google.oauth2.credentials import Credentials  # noqa: E402
from google_auth_oauthlib.flow import Flow  # noqa: E402

CLIENT_ID = "mock-client-id.apps.googleusercontent.com"
CLIENT_SECRET = "mock-client-secret"
GMAIL = "https://www.googleapis.com/auth/gmail.readonly"
EMAIL_SCOPE = "https://www.googleapis.com/auth/userinfo.email"
REDIRECT = "http://127.0.0.1:8765/callback"

# verify_oauth2_token fetches Google's PEM certificates; point it at the mock's.
google_id_token._GOOGLE_OAUTH2_CERTS_URL = f"{BASE}/oauth2/v1/certs"


def admin(method, path, body=None):
    # The admin API takes JSON only, an empty body included.
    response = requests.request(
        method,
        f"{BASE}/__admin/{path}",
        json=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def refreshed_credentials(scopes):
    minted = admin("POST", "refresh-tokens", {"scopes": scopes})
    creds = Credentials(
        token=None,
        refresh_token=minted["refresh_token"],
        token_uri=f"{BASE}/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    creds.refresh(Request())
    return creds


def check_id_token_verifies_with_verify_oauth2_token():
    admin("POST", "reset")
    creds = refreshed_credentials(["openid", EMAIL_SCOPE])
    assert creds.id_token, "an id_token with openid"
    info = google_id_token.verify_oauth2_token(creds.id_token, Request(), CLIENT_ID)
    assert info["iss"] == "https://accounts.google.com", info
    assert info["email"] == "test-user@example.com", info
    assert info["aud"] == CLIENT_ID, info
    # The keys rotate: a token signed before still verifies (the previous key stays published).
    admin("POST", "signing-keys/rotate")
    google_id_token.verify_oauth2_token(creds.id_token, Request(), CLIENT_ID)
    header, claims, signature = creds.id_token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    payload["email"] = "mallory@example.com"
    forged_claims = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    forged = ".".join([header, forged_claims, signature])
    try:
        google_id_token.verify_oauth2_token(forged, Request(), CLIENT_ID)
    except ValueError:
        pass
    else:
        raise AssertionError("a forged signature verified")
    try:
        google_id_token.verify_oauth2_token(creds.id_token, Request(), "another-client")
    except ValueError:
        pass
    else:
        raise AssertionError("a token for another audience verified")


def check_userinfo_and_tokeninfo_read_as_the_library_reads_them():
    admin("POST", "reset")
    creds = refreshed_credentials(["openid", EMAIL_SCOPE])
    session = AuthorizedSession(creds)
    userinfo = session.get(f"{BASE}/v1/userinfo", timeout=10)
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json()["email"] == "test-user@example.com", userinfo.text
    info = requests.get(f"{BASE}/tokeninfo", params={"id_token": creds.id_token}, timeout=10)
    assert info.status_code == 200 and info.json()["aud"] == CLIENT_ID, info.text


def check_sign_in_with_pkce_through_flow_fetch_token():
    admin("POST", "reset")
    flow = Flow.from_client_config(
        {
            "web": {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "auth_uri": f"{BASE}/o/oauth2/v2/auth",
                "token_uri": f"{BASE}/token",
                "redirect_uris": [REDIRECT],
            }
        },
        scopes=["openid", EMAIL_SCOPE, GMAIL],
        redirect_uri=REDIRECT,
    )
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    assert "code_challenge_method=S256" in url, url
    # The browser's part: the mock's consent step approves at once and redirects.
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    callback = parse_qs(urlsplit(answer.headers["location"]).query)
    assert callback["state"] == [state], callback
    flow.fetch_token(code=callback["code"][0])
    creds = flow.credentials
    assert creds.token.startswith("ya29."), "an access token"
    assert creds.refresh_token and creds.refresh_token.startswith("1//"), "a refresh token"
    google_id_token.verify_oauth2_token(creds.id_token, Request(), CLIENT_ID)
    # The same code a second time: invalid_grant.
    try:
        flow.fetch_token(code=callback["code"][0])
    except Exception as error:  # oauthlib's InvalidGrantError
        assert "invalid_grant" in str(error) or type(error).__name__ == "InvalidGrantError", repr(error)
    else:
        raise AssertionError("a code was exchanged twice")
    # The refresh token works with google-auth.
    creds.refresh(Request())


def service_account_info(**body):
    return admin("POST", "service-accounts", body)


def expect_refresh_error(creds, needle):
    try:
        creds.refresh(Request())
    except google.auth.exceptions.RefreshError as error:
        assert needle in str(error), f"{needle!r} not in {error}"
    else:
        raise AssertionError(f"no RefreshError ({needle})")


def check_service_account_key_file_gets_a_token():
    admin("POST", "reset")
    info = service_account_info()
    assert info["token_uri"] == f"{BASE}/token", info["token_uri"]
    creds = service_account.Credentials.from_service_account_info(info, scopes=[GMAIL])
    creds.refresh(Request())
    assert creds.token.startswith("ya29."), "an access token"
    profile = AuthorizedSession(creds).get(f"{BASE}/gmail/v1/users/me/profile", timeout=10)
    assert profile.status_code == 200, profile.text
    info_answer = requests.get(f"{BASE}/tokeninfo", params={"access_token": creds.token}, timeout=10)
    assert info_answer.json()["email"] == info["client_email"], info_answer.text


def check_service_account_errors_raise_refresh_error():
    admin("POST", "reset")
    info = service_account_info()
    other = service_account_info(name="other")

    forged = dict(info, private_key=other["private_key"])
    expect_refresh_error(
        service_account.Credentials.from_service_account_info(forged, scopes=[GMAIL]),
        "Invalid JWT Signature.",
    )
    expect_refresh_error(
        service_account.Credentials.from_service_account_info(info, scopes=[GMAIL]).with_subject(
            "user@example.com"
        ),
        "unauthorized_client",
    )
    expect_refresh_error(
        service_account.Credentials.from_service_account_info(info),
        "invalid_scope",
    )
    # The machine's clock two hours behind the mock's: iat/exp out of a reasonable timeframe.
    admin("POST", "clock", {"advance_seconds": 7200})
    expect_refresh_error(
        service_account.Credentials.from_service_account_info(info, scopes=[GMAIL]),
        "Token must be a short-lived token",
    )
    admin("POST", "reset")
    info = service_account_info()
    email = info["client_email"]
    requests.delete(
        f"{BASE}/__admin/service-accounts/{email}",
        headers={"Content-Type": "application/json"},
        timeout=10,
    ).raise_for_status()
    expect_refresh_error(
        service_account.Credentials.from_service_account_info(info, scopes=[GMAIL]),
        "account not found",
    )


def check_domain_wide_delegation_impersonates_the_user():
    admin("POST", "reset")
    info = service_account_info(domain_wide_delegation=True)
    creds = service_account.Credentials.from_service_account_info(info, scopes=[GMAIL]).with_subject(
        "alice@example.com"
    )
    creds.refresh(Request())
    answer = requests.get(f"{BASE}/tokeninfo", params={"access_token": creds.token}, timeout=10)
    assert answer.json()["email"] == "alice@example.com", answer.text


CHECKS = [
    check_id_token_verifies_with_verify_oauth2_token,
    check_userinfo_and_tokeninfo_read_as_the_library_reads_them,
    check_sign_in_with_pkce_through_flow_fetch_token,
    check_service_account_key_file_gets_a_token,
    check_service_account_errors_raise_refresh_error,
    check_domain_wide_delegation_impersonates_the_user,
]

if __name__ == "__main__":
    for check in CHECKS:
        check()
        print(f"PASS {check.__name__}", flush=True)
    print(json.dumps({"passed": len(CHECKS)}))
