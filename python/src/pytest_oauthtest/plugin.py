"""pytest fixtures for oauthtest's mock Google, loaded through the ``pytest11`` entry point.

=========================  ========  ===========================================================
fixture                    scope     what it gives
=========================  ========  ===========================================================
``oauthtest_server``       session   one ``oauthtest --mode serve --port 0`` for the whole run
``oauthtest``              function  that server, reset before the test (fresh tokens, journal,
                                     clock, no scenario)
``oauthtest_isolated``     function  a server process of the test's own, stopped after it
``google_credentials``     function  google-auth ``Credentials`` for a freshly minted refresh
                                     token, ``token_uri`` pointing at ``oauthtest``
=========================  ========  ===========================================================

The binary is ``--oauthtest-bin``, else the ``oauthtest_bin`` ini option, else
``$OAUTHTEST_BIN``, else ``oauthtest`` on PATH. ``--oauthtest-arg`` (repeatable) and the
``oauthtest_args`` ini option add serve options, e.g. ``--scenarios tests/scenarios``.
"""

from __future__ import annotations

import shlex
from typing import Iterator, List, Optional

import pytest

from .server import OAuthTestError, OAuthTestServer


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("oauthtest", "oauthtest's mock Google")
    group.addoption(
        "--oauthtest-bin",
        default=None,
        help="the oauthtest binary (default: $OAUTHTEST_BIN, else oauthtest on PATH)",
    )
    group.addoption(
        "--oauthtest-arg",
        action="append",
        default=[],
        help="an extra option for oauthtest --mode serve (repeatable)",
    )
    parser.addini("oauthtest_bin", "the oauthtest binary", default="")
    parser.addini("oauthtest_args", "extra options for oauthtest --mode serve", default="")


def _settings(config: pytest.Config):
    binary: Optional[str] = config.getoption("--oauthtest-bin") or config.getini("oauthtest_bin")
    args: List[str] = shlex.split(config.getini("oauthtest_args") or "")
    args += config.getoption("--oauthtest-arg")
    return binary or None, args


def _start(config: pytest.Config) -> OAuthTestServer:
    binary, args = _settings(config)
    try:
        return OAuthTestServer(binary=binary, args=args).start()
    except OAuthTestError as error:
        message = f"oauthtest: {error}"
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def oauthtest_server(pytestconfig: pytest.Config) -> Iterator[OAuthTestServer]:
    """One ``oauthtest --mode serve`` for the session; not reset between tests."""
    server = _start(pytestconfig)
    with server:
        yield server


@pytest.fixture
def oauthtest(oauthtest_server: OAuthTestServer) -> OAuthTestServer:
    """The session's server, reset before this test."""
    oauthtest_server.reset()
    return oauthtest_server


@pytest.fixture
def oauthtest_isolated(pytestconfig: pytest.Config) -> Iterator[OAuthTestServer]:
    """A server process of this test's own (its own port), stopped when the test ends."""
    server = _start(pytestconfig)
    with server:
        yield server


@pytest.fixture
def google_credentials(oauthtest: OAuthTestServer):
    """google-auth ``Credentials`` for a new refresh token of the default mock client.

    No access token yet: the first request through ``AuthorizedSession`` (or ``refresh``) asks
    the mock's token endpoint for one.
    """
    try:
        return oauthtest.credentials()
    except OAuthTestError as error:
        message = str(error)
    pytest.fail(message, pytrace=False)
