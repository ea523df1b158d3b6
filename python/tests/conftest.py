"""The plugin's own tests: against the real oauthtest binary.

Without the binary ($OAUTHTEST_BIN, or oauthtest on PATH) or google-auth, the tests that need
them are skipped with the reason (``pytest -rs`` lists it); under CI (``CI`` set) the run fails
instead. The plugin is used from this checkout when ``pip install ./python`` has not been run.
"""

import os
import pathlib
import sys

import pytest

try:
    import pytest_oauthtest  # noqa: F401  (installed: its pytest11 entry point loads the plugin)

    FROM_SOURCE = False
    pytest_plugins = ["pytester"]
except ImportError:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))
    FROM_SOURCE = True
    pytest_plugins = ["pytester", "pytest_oauthtest.plugin"]

from pytest_oauthtest import OAuthTestError, find_binary  # noqa: E402

IN_CI = bool(os.environ.get("CI"))


def _missing_binary(config):
    try:
        find_binary(config.getoption("--oauthtest-bin") or None)
    except OAuthTestError as error:
        return str(error)
    return None


def pytest_configure(config):
    missing = _missing_binary(config)
    if missing and IN_CI:
        raise pytest.UsageError(f"CI is set, so these tests must run, but {missing}")
    config.oauthtest_missing = missing


def pytest_collection_modifyitems(config, items):
    if config.oauthtest_missing:
        skip = pytest.mark.skip(reason=f"SKIPPED: {config.oauthtest_missing}")
        for item in items:
            item.add_marker(skip)


@pytest.fixture
def google_auth():
    """google-auth's modules, or a skip (a failure under CI) when it is not installed."""
    try:
        import google.auth.exceptions
        import google.auth.transport.requests
    except ImportError:
        message = "google-auth is not installed (pip install 'pytest-oauthtest[google-auth]')"
        if IN_CI:
            pytest.fail(f"CI is set, so this test must run, but {message}", pytrace=False)
        pytest.skip(f"SKIPPED: {message}")
    return google.auth


@pytest.fixture
def plugin_args():
    """What an inner pytest run (pytester) needs to load the plugin as a user's run would."""
    return ["-p", "pytest_oauthtest.plugin"] if FROM_SOURCE else []
