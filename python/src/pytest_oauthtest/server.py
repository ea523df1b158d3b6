"""A running ``oauthtest --mode serve`` and a small client of its admin API.

Usable without pytest too::

    with OAuthTestServer() as mock:
        token = mock.mint_refresh_token()
        ...  # point the application's token URL at mock.token_url

Admin answers hold the mock's own tokens and client secrets (that is their purpose); this module
never logs or prints them, and its error messages carry only the admin API's ``error`` and
``error_description``, which name what was wrong and never a token.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

#: The client every serve registers: the id and secret google-auth should present.
DEFAULT_CLIENT_ID = "mock-client-id.apps.googleusercontent.com"
DEFAULT_CLIENT_SECRET = "mock-client-secret"
#: The scope a minted refresh token gets when none is asked for.
DEFAULT_SCOPES = ("https://www.googleapis.com/auth/gmail.readonly",)

BIN_VAR = "OAUTHTEST_BIN"


class OAuthTestError(Exception):
    """oauthtest could not be found or started, or its admin API refused a request."""


class AdminError(OAuthTestError):
    """The admin API answered with an error status."""

    def __init__(self, method: str, path: str, status: int, error: str, description: str):
        super().__init__(f"{method} {path}: {status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


def find_binary(explicit: Optional[str] = None) -> str:
    """The oauthtest binary: ``explicit``, else ``$OAUTHTEST_BIN``, else ``oauthtest`` on PATH.

    Raises :class:`OAuthTestError` naming where it looked and how to install it.
    """
    for origin, candidate in (("the given path", explicit), (BIN_VAR, os.environ.get(BIN_VAR))):
        if candidate:
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
            raise OAuthTestError(f"{origin} {candidate!r} is not an executable oauthtest binary")
    found = shutil.which("oauthtest")
    if found:
        return found
    raise OAuthTestError(
        "oauthtest is not on PATH and OAUTHTEST_BIN is not set; install it with "
        "`cargo install --path . --locked` in an oauthtest checkout (or `cargo install --git "
        "URL --locked oauthtest`), or set OAUTHTEST_BIN to the binary"
    )


class OAuthTestServer:
    """``oauthtest --mode serve --port 0`` as a child process, stopped by :meth:`stop`.

    ``args`` are passed to serve after ``--mode serve --port 0`` (``--scenario NAME``,
    ``--scenarios DIR``, ``--client-id ID``...). ``env`` replaces the environment it runs in
    (default: this process's). Its log (stderr) goes to a temporary file, read by :meth:`log`.
    """

    def __init__(
        self,
        binary: Optional[str] = None,
        args: Sequence[str] = (),
        env: Optional[Mapping[str, str]] = None,
        startup_timeout: float = 30.0,
        request_timeout: float = 10.0,
    ):
        self.binary = find_binary(binary)
        self.args = list(args)
        self.env = dict(os.environ if env is None else env)
        self.startup_timeout = startup_timeout
        self.request_timeout = request_timeout
        self._process: Optional[subprocess.Popen] = None
        self._url: Optional[str] = None
        self._log = None
        self._rest: "queue.Queue[str]" = queue.Queue()
        # Loopback only: never through a proxy named by HTTP_PROXY and friends.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.returncode: Optional[int] = None
        self.summary: str = ""

    # --- the process ----------------------------------------------------------------------------

    def start(self) -> "OAuthTestServer":
        """Starts serve and waits for the URL it prints first. Returns ``self``."""
        if self._process is not None:
            raise OAuthTestError("this server is already started")
        self._log = tempfile.TemporaryFile(prefix="oauthtest-serve-", suffix=".log")
        command = [self.binary, "--mode", "serve", "--port", "0", *self.args]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=self.env,
            text=True,
        )
        first: "queue.Queue[str]" = queue.Queue()

        def read_stdout(stdout):
            first.put(stdout.readline())
            self._rest.put(stdout.read())

        threading.Thread(target=read_stdout, args=(self._process.stdout,), daemon=True).start()
        try:
            line = first.get(timeout=self.startup_timeout)
        except queue.Empty:
            self._kill()
            raise OAuthTestError(
                f"oauthtest --mode serve printed no URL within {self.startup_timeout:g} s; "
                f"its log:\n{self.log()}"
            ) from None
        url = line.strip()
        if not url.startswith("http://"):
            code = self._process.wait(timeout=self.startup_timeout)
            self.returncode = code
            raise OAuthTestError(
                f"`{' '.join(command)}` did not start (exit {code}); its log:\n{self.log()}"
            )
        self._url = url
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Stops serve with ``sig`` (SIGTERM: open requests finish) and returns its exit status.

        The summary it prints on the way out is kept in :attr:`summary`.
        """
        process = self._process
        if process is None:
            return self.returncode if self.returncode is not None else 0
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        try:
            self.summary = self._rest.get(timeout=5).strip()
        except queue.Empty:
            self.summary = ""
        self.returncode = process.returncode
        self._process = None
        if process.stdout is not None:
            process.stdout.close()
        return self.returncode

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return None if self._process is None else self._process.pid

    def log(self) -> str:
        """What serve logged on stderr so far (one line per request; tokens as fingerprints)."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def __enter__(self) -> "OAuthTestServer":
        """Starts the server unless it is running already."""
        return self if self._process is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None

    # --- where the application points -------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, such as ``http://127.0.0.1:40117``."""
        if self._url is None:
            raise OAuthTestError("the server is not started")
        return self._url

    @property
    def token_url(self) -> str:
        """Where Google's ``https://oauth2.googleapis.com/token`` is on this server."""
        return f"{self.url}/token"

    @property
    def tokeninfo_url(self) -> str:
        return f"{self.url}/tokeninfo"

    @property
    def revoke_url(self) -> str:
        return f"{self.url}/revoke"

    @property
    def gmail_profile_url(self) -> str:
        """The mock's Gmail ``users/me/profile``: 200 for a live access token, 401 otherwise."""
        return f"{self.url}/gmail/v1/users/me/profile"

    # --- the admin API ----------------------------------------------------------------------

    def admin(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        """One admin request (``path`` below ``/__admin/``); returns its JSON answer.

        Every request is sent as JSON (``Content-Type: application/json``; a POST without a
        body sends ``{}``). Raises :class:`AdminError` on a 4xx or 5xx answer.
        """
        data = None
        if method != "GET":
            data = json.dumps(body if body is not None else {}).encode()
        request = urllib.request.Request(
            f"{self.url}/__admin/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=self.request_timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            try:
                answer = json.load(error)
            except ValueError:
                answer = {}
            raise AdminError(
                method,
                f"/__admin/{path}",
                error.code,
                answer.get("error", "error"),
                answer.get("error_description", error.reason),
            ) from None

    def mint_refresh_token(
        self,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
        scopes: Optional[Iterable[str]] = None,
    ) -> str:
        """A new refresh token, as a consent flow would give one.

        For the default client unless ``client_id`` is given; a ``client_secret`` registers that
        client with that secret too.
        """
        body: Dict[str, Any] = {}
        if client_id is not None:
            body["client_id"] = client_id
        if client_secret is not None:
            body["client_secret"] = client_secret
        if scopes is not None:
            body["scopes"] = list(scopes)
        return self.admin("POST", "refresh-tokens", body)["refresh_token"]

    def use_scenario(self, name: str) -> Dict[str, Any]:
        """Resets the mock, then applies the scenario ``name`` (one of :meth:`scenarios`).

        Returns the credential the scenario says the application stored: ``client_id``,
        ``client_secret``, ``refresh_token``, ``access_token``, ``access_token_expires_at``
        (Unix seconds or None) and ``scopes``.
        """
        return self.admin("POST", "scenario", {"name": name})["credential"]

    def scenario(self) -> Dict[str, Any]:
        """The scenario in force (``scenario``: its name or None) and its ``credential``."""
        return self.admin("GET", "scenario")

    def scenarios(self) -> List[str]:
        """The names of the scenarios this server knows."""
        return [s["name"] for s in self.admin("GET", "scenarios")["scenarios"]]

    def requests(self, endpoint: Optional[str] = None, since: int = 0) -> List[Dict[str, Any]]:
        """The requests the mock received after request number ``since``, oldest first.

        ``endpoint`` is one of ``token``, ``tokeninfo``, ``revoke``, ``api``, ``discovery``,
        ``other``. Tokens appear as fingerprints. Follows the admin API's pages to the end.
        """
        out: List[Dict[str, Any]] = []
        while True:
            query = {"since": str(since), "limit": "10000"}
            if endpoint is not None:
                query["endpoint"] = endpoint
            page = self.admin("GET", "requests?" + urllib.parse.urlencode(query))
            out.extend(page["requests"])
            if not page.get("more"):
                return out
            since = page["next_since"]

    def advance_clock(self, seconds: int) -> int:
        """Moves the mock clock forward; the access tokens it issued expire on its clock.

        Returns the mock's time afterwards (Unix seconds).
        """
        return self.admin("POST", "clock", {"advance_seconds": int(seconds)})["now_unix"]

    def now(self) -> int:
        """The mock clock (Unix seconds)."""
        return self.admin("GET", "clock")["now_unix"]

    def reset(self) -> None:
        """Forgets tokens, requests, scripts, clock and scenario."""
        self.admin("POST", "reset")

    # --- google-auth ------------------------------------------------------------------------

    def credentials(
        self,
        refresh_token: Optional[str] = None,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        scopes: Optional[Sequence[str]] = None,
    ):
        """google-auth ``Credentials`` whose ``token_uri`` is this server.

        With no ``refresh_token``, one is minted for ``client_id`` (registered with
        ``client_secret``). It holds no access token yet: the first use refreshes it.
        Needs google-auth (``pip install 'pytest-oauthtest[google-auth]'``).
        """
        try:
            from google.oauth2.credentials import Credentials
        except ImportError as error:
            raise OAuthTestError(
                "the google-auth credentials need google-auth: "
                "pip install 'pytest-oauthtest[google-auth]'"
            ) from error
        scopes = list(scopes if scopes is not None else DEFAULT_SCOPES)
        if refresh_token is None:
            refresh_token = self.mint_refresh_token(client_id, client_secret, scopes)
        return Credentials(
            token=None,
            refresh_token=refresh_token,
            token_uri=self.token_url,
            client_id=client_id,
            client_secret=client_secret,
            scopes=scopes,
        )

    def __repr__(self) -> str:
        state = self._url if self._url else "not started"
        return f"<OAuthTestServer {state}>"
