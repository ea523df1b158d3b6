"""The refresh job: load a credential, refresh it with google-auth when it has expired, call the
Gmail profile with the token, and (in the right variant) write the result back.

The variants, chosen by ``REFAPP_VARIANT`` (or the caller):

- ``right``: reads the row; when the token has expired, takes the lock (``BEGIN IMMEDIATE`` on
  SQLite, ``SELECT … FOR UPDATE`` on PostgreSQL), reads the row again and refreshes only if it is
  still expired (another worker may have refreshed it meanwhile), writes back the new access token,
  its expiry and the refresh token Google returned (rotated or not), then commits. On
  ``invalid_grant`` it marks the row ``needs_reconnect`` and stops; a row so marked is never
  refreshed again until the user reconnects. When the API answers 401 to a token that looked
  valid, it refreshes the same way (unless another worker already replaced that token) and
  retries the call once, as google-auth's ``AuthorizedSession`` does.
- ``eager``: the right variant's lock, re-read and write-back, but it refreshes on every job,
  whether the token has expired or not ("refresh before each call, to be safe"): nothing is lost,
  but every job costs a token request, a storm of refreshes nobody needed.
- ``naive``: what such code often looks like. No lock, no re-read: every worker that finds the
  token expired refreshes it. It retries a failed refresh, ``invalid_grant`` included, and never
  marks the row. It writes back the new access token and expiry into the payload it read before
  the refresh, keeping the refresh token it started with: a rotated refresh token is lost.
- ``no-writeback``: the naive job that does not write anything back at all: the next run finds
  the same expired token and refreshes again.

Endpoints come from the variables oauthtest hands a ``--target-cmd`` or a trigger:
``OAUTHTEST_TOKEN_URL`` and ``OAUTHTEST_API_URL``.

Nothing here prints a token, a client secret or the key: the summary names the outcome only.
"""

import os
import sys
import time
from datetime import datetime, timedelta, timezone

import requests
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials

from refapp.db import STATUS_NEEDS_RECONNECT, ConfigError, Database
from refapp.sealing import decrypt_credential, encrypt_credential

VARIANTS = ("right", "eager", "naive", "no-writeback")
NAIVE_ATTEMPTS = 3

# Exit codes of ``refresh``: the job's outcome.
EXIT = {"ok": 0, "needs_reconnect": 3}


def endpoints_from_env():
    found = {}
    for name in ("OAUTHTEST_TOKEN_URL", "OAUTHTEST_API_URL"):
        value = os.environ.get(name)
        if not value:
            raise ConfigError(f"{name} is not set")
        found[name] = value
    return found


def variant_from_env():
    variant = os.environ.get("REFAPP_VARIANT", "right")
    if variant not in VARIANTS:
        raise ConfigError(f"REFAPP_VARIANT: expected one of {', '.join(VARIANTS)}, got another value")
    return variant


def _parse_expiry(text):
    """The payload's RFC 3339 expiry as google-auth keeps it: a naive UTC datetime."""
    if not text:
        return None
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc).replace(tzinfo=None)
    return at


def credentials(payload, token_url):
    scopes = payload.get("scopes")
    if isinstance(scopes, str):
        scopes = scopes.split()
    return Credentials(
        token=payload.get("access_token"),
        refresh_token=payload.get("refresh_token"),
        token_uri=token_url,
        client_id=payload.get("client_id"),
        client_secret=payload.get("client_secret"),
        scopes=scopes or None,
        expiry=_parse_expiry(payload.get("expiry")),
    )


def fresh(creds):
    """google-auth's ``creds.valid``, with its refresh margin (3 min 45 s before expiry) replaced
    by ``OAUTHTEST_REFRESH_MARGIN_MS`` where oauthtest hands one (a worker-sim run whose tokens
    live seconds)."""
    margin_ms = os.environ.get("OAUTHTEST_REFRESH_MARGIN_MS")
    if margin_ms is None or not margin_ms.isdigit():
        return creds.valid
    if creds.token is None or creds.expiry is None:
        return False
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now < creds.expiry - timedelta(milliseconds=int(margin_ms))


def _store_tokens(payload, creds, keep_refresh_token):
    payload = dict(payload)
    payload["access_token"] = creds.token
    payload["expiry"] = creds.expiry.replace(tzinfo=timezone.utc).isoformat()
    if not keep_refresh_token:
        payload["refresh_token"] = creds.refresh_token
    return payload


def _error_code(exc):
    """The token endpoint's ``error`` (``invalid_grant``…), never its message."""
    if len(exc.args) > 1 and isinstance(exc.args[1], dict):
        return exc.args[1].get("error") or "refresh_error"
    return "invalid_grant" if "invalid_grant" in str(exc) else "refresh_error"


def _log(message):
    print(f"refapp: {message}", file=sys.stderr, flush=True)


class Summary(dict):
    """What one run did, with no secret in it: printed as JSON, returned by the Celery task."""

    def __init__(self, credential_id, variant):
        super().__init__(
            credential_id=str(credential_id),
            variant=variant,
            outcome=None,
            refresh_attempts=0,
            refreshed=False,
            wrote_back=False,
            api_status=None,
        )


def run(credential_id, endpoints=None, variant=None, database_url=None):
    """Runs the job once for ``credential_id``; returns its :class:`Summary`."""
    variant = variant or variant_from_env()
    endpoints = endpoints or endpoints_from_env()
    summary = Summary(credential_id, variant)
    db = Database(database_url)
    try:
        job = _right if variant in ("right", "eager") else _naive
        creds = job(db, credential_id, endpoints, variant, summary)
    finally:
        db.close()
    if creds is not None:
        _call_api(creds, endpoints, summary)
    if creds is not None and variant == "right" and summary["api_status"] == 401:
        # The API refused a token that looked valid (revoked, expired early, clock skew): as
        # google-auth's AuthorizedSession does, refresh once and retry the call once.
        rejected = creds.token
        db = Database(database_url)
        try:
            creds = _refresh_locked(
                db, credential_id, endpoints, summary, lambda c: c.token != rejected and fresh(c)
            )
        finally:
            db.close()
        if creds is not None:
            _call_api(creds, endpoints, summary)
    _log(
        f"credential {credential_id}: {summary['outcome']} ({variant}; "
        f"refresh attempts {summary['refresh_attempts']}, wrote back {summary['wrote_back']}, "
        f"api {summary['api_status']})"
    )
    return summary


def _right(db, credential_id, endpoints, variant, summary):
    row = db.load(credential_id)
    if row is None:
        summary["outcome"] = "not_found"
        return None
    if row.status == STATUS_NEEDS_RECONNECT:
        summary["outcome"] = "needs_reconnect"
        return None
    creds = credentials(decrypt_credential(row.encrypted_data), endpoints["OAUTHTEST_TOKEN_URL"])
    if variant == "eager":
        return _refresh_locked(db, credential_id, endpoints, summary, lambda c: False)
    if fresh(creds):
        return creds
    return _refresh_locked(db, credential_id, endpoints, summary, fresh)


def _refresh_locked(db, credential_id, endpoints, summary, usable):
    """The right variant's refresh: under the row's lock, reads it again and refreshes unless
    the token it holds now is ``usable`` (another worker refreshed it meanwhile)."""
    with db.transaction(lock=True):
        row = db.load(credential_id, for_update=True)  # again, under the lock
        if row is None:
            summary["outcome"] = "not_found"
            return None
        if row.status == STATUS_NEEDS_RECONNECT:
            summary["outcome"] = "needs_reconnect"
            return None
        payload = decrypt_credential(row.encrypted_data)
        creds = credentials(payload, endpoints["OAUTHTEST_TOKEN_URL"])
        if usable(creds):
            return creds  # another worker refreshed it while this one waited for the lock
        summary["refresh_attempts"] += 1
        try:
            creds.refresh(Request())
        except RefreshError as exc:
            code = _error_code(exc)
            if code == "invalid_grant":
                db.save(credential_id, status=STATUS_NEEDS_RECONNECT)
                summary["outcome"] = "needs_reconnect"
            else:
                summary["outcome"] = f"refresh_failed: {code}"
            return None
        db.save(credential_id, sealed=encrypt_credential(_store_tokens(payload, creds, False)))
        summary["refreshed"] = summary["wrote_back"] = True
    return creds


def _naive(db, credential_id, endpoints, variant, summary):
    row = db.load(credential_id)
    if row is None:
        summary["outcome"] = "not_found"
        return None
    payload = decrypt_credential(row.encrypted_data)
    creds = credentials(payload, endpoints["OAUTHTEST_TOKEN_URL"])
    if fresh(creds):
        return creds
    for attempt in range(NAIVE_ATTEMPTS):
        summary["refresh_attempts"] += 1
        try:
            creds.refresh(Request())
            break
        except RefreshError as exc:
            code = _error_code(exc)
            if attempt + 1 == NAIVE_ATTEMPTS:
                summary["outcome"] = f"refresh_failed: {code}"
                return None
            time.sleep(0.2)
    summary["refreshed"] = True
    if variant == "naive":
        with db.transaction(lock=False):
            db.save(credential_id, sealed=encrypt_credential(_store_tokens(payload, creds, True)))
        summary["wrote_back"] = True
    return creds


def _call_api(creds, endpoints, summary):
    try:
        answer = requests.get(
            endpoints["OAUTHTEST_API_URL"],
            headers={"Authorization": f"Bearer {creds.token}"},
            timeout=30,
        )
        summary["api_status"] = answer.status_code
    except requests.RequestException as exc:
        summary["api_status"] = None
        summary["outcome"] = f"api_failed: {type(exc).__name__}"
        return
    summary["outcome"] = "ok" if answer.status_code == 200 else "api_failed"
