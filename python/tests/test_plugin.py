"""The fixtures and the admin client, against a real ``oauthtest --mode serve``."""

import json
import os
import signal
import textwrap
import urllib.error
import urllib.parse
import urllib.request

import pytest

from pytest_oauthtest import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    AdminError,
    OAuthTestError,
    OAuthTestServer,
)

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post_form(url, fields):
    """(status, JSON answer) of a form POST, as an application's token request is sent."""
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with NO_PROXY.open(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def refresh(server, refresh_token, client_id=DEFAULT_CLIENT_ID, secret=DEFAULT_CLIENT_SECRET):
    return post_form(
        server.token_url,
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": secret,
        },
    )


def api_status(server, access_token):
    request = urllib.request.Request(
        server.gmail_profile_url, headers={"Authorization": f"Bearer {access_token}"}
    )
    try:
        with NO_PROXY.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_session_server_listens_on_loopback_and_names_its_token_url(oauthtest, oauthtest_server):
    assert oauthtest is oauthtest_server
    assert oauthtest.url.startswith("http://127.0.0.1:")
    assert not oauthtest.url.endswith(":0")
    assert oauthtest.token_url == f"{oauthtest.url}/token"
    assert oauthtest.running


def test_a_minted_refresh_token_refreshes_and_the_journal_shows_it_by_fingerprint(oauthtest):
    token = oauthtest.mint_refresh_token()
    status, answer = refresh(oauthtest, token)
    assert status == 200, answer
    assert answer["access_token"].startswith("ya29.")
    journal = oauthtest.requests(endpoint="token")
    assert [(e["grant_type"], e["status"]) for e in journal] == [("refresh_token", 200)]
    assert journal[0]["refresh_token_fingerprint"]
    assert token not in json.dumps(journal)
    assert oauthtest.requests(endpoint="api") == []


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_starts_with_a_reset_server(oauthtest, run):
    # Run twice on one session server: the second run would see the first one's request.
    assert oauthtest.requests() == [], f"run {run} saw an earlier test's requests"
    assert oauthtest.scenario()["scenario"] is None
    refresh(oauthtest, oauthtest.mint_refresh_token())
    oauthtest.use_scenario("invalid_grant_revoked")


def test_reset_forgets_requests_scenario_and_minted_tokens(oauthtest):
    token = oauthtest.mint_refresh_token()
    oauthtest.use_scenario("success")
    refresh(oauthtest, "1//unknown")
    oauthtest.reset()
    assert oauthtest.requests() == []
    assert oauthtest.scenario() == {"scenario": None, "credential": None}
    status, answer = refresh(oauthtest, token)
    assert (status, answer["error"]) == (400, "invalid_grant")


def test_use_scenario_returns_the_stored_credential_and_the_mock_answers_as_scripted(oauthtest):
    assert "invalid_grant_revoked" in oauthtest.scenarios()
    credential = oauthtest.use_scenario("invalid_grant_revoked")
    assert set(credential) >= {"client_id", "client_secret", "refresh_token", "scopes"}
    status, answer = refresh(
        oauthtest, credential["refresh_token"], credential["client_id"], credential["client_secret"]
    )
    assert (status, answer["error"]) == (400, "invalid_grant")
    assert oauthtest.scenario()["scenario"] == "invalid_grant_revoked"
    [entry] = oauthtest.requests(endpoint="token")
    assert (entry["status"], entry["error"]) == (400, "invalid_grant")


def test_an_unknown_scenario_is_an_admin_error_naming_the_known_ones(oauthtest):
    with pytest.raises(AdminError) as raised:
        oauthtest.use_scenario("no_such_scenario")
    assert raised.value.status == 400
    assert raised.value.error == "bad_admin_request"
    assert "no_such_scenario" in str(raised.value)
    assert "success" in str(raised.value)


def test_advancing_the_clock_expires_the_access_tokens_it_issued(oauthtest):
    status, answer = refresh(oauthtest, oauthtest.mint_refresh_token())
    assert status == 200, answer
    assert api_status(oauthtest, answer["access_token"]) == 200
    before = oauthtest.now()
    assert oauthtest.advance_clock(3600) >= before + 3600
    assert api_status(oauthtest, answer["access_token"]) == 401


def test_requests_follows_every_page_of_the_journal(oauthtest):
    token = oauthtest.mint_refresh_token()
    for _ in range(3):
        refresh(oauthtest, token)
    journal = oauthtest.requests()
    assert [e["seq"] for e in journal] == sorted(e["seq"] for e in journal)
    assert len(journal) == 3
    assert oauthtest.requests(since=journal[0]["seq"]) == journal[1:]


def test_the_log_names_each_request_without_any_token(oauthtest):
    token = oauthtest.mint_refresh_token()
    status, answer = refresh(oauthtest, token)
    assert status == 200
    log = oauthtest.log()
    assert "POST /token" in log
    assert token not in log
    assert answer["access_token"] not in log


def test_google_credentials_refresh_against_the_mock_and_the_api_accepts_them(
    google_auth, oauthtest, google_credentials
):
    from google.auth.transport.requests import AuthorizedSession, Request

    assert google_credentials.token_uri == oauthtest.token_url
    assert not google_credentials.valid
    google_credentials.refresh(Request())
    assert google_credentials.valid and google_credentials.token.startswith("ya29.")
    session = AuthorizedSession(google_credentials)
    session.trust_env = False
    assert session.get(oauthtest.gmail_profile_url, timeout=10).status_code == 200
    assert len(oauthtest.requests(endpoint="token")) == 1


def test_google_auth_raises_refresh_error_on_a_revoked_scenario_credential(google_auth, oauthtest):
    from google.auth.transport.requests import Request

    stored = oauthtest.use_scenario("invalid_grant_revoked")
    creds = oauthtest.credentials(
        refresh_token=stored["refresh_token"],
        client_id=stored["client_id"],
        client_secret=stored["client_secret"],
    )
    with pytest.raises(google_auth.exceptions.RefreshError) as raised:
        creds.refresh(Request())
    assert "invalid_grant" in str(raised.value)
    assert stored["refresh_token"] not in oauthtest.log()


def test_an_isolated_server_is_a_process_of_its_own(oauthtest, oauthtest_isolated):
    assert oauthtest_isolated.url != oauthtest.url
    assert oauthtest_isolated.pid != oauthtest.pid
    refresh(oauthtest_isolated, "1//unknown")
    assert len(oauthtest_isolated.requests()) == 1
    assert oauthtest.requests() == []


def test_a_server_stops_cleanly_on_sigterm_and_sigint_and_prints_its_summary(pytestconfig):
    binary = pytestconfig.getoption("--oauthtest-bin")
    for sig, name in [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")]:
        server = OAuthTestServer(binary=binary).start()
        refresh(server, "1//unknown")
        assert server.stop(sig) == 0
        assert not server.running
        assert f"stopped on {name}" in server.summary
        assert "1 requests answered by the mock" in server.summary


def test_serve_options_that_do_not_parse_are_an_error_with_its_log(pytestconfig):
    server = OAuthTestServer(
        binary=pytestconfig.getoption("--oauthtest-bin"), args=["--scenario", "no_such_scenario"]
    )
    with pytest.raises(OAuthTestError) as raised:
        server.start()
    message = str(raised.value)
    assert "did not start (exit 2)" in message
    assert "no_such_scenario" in message


def test_a_missing_binary_is_an_error_saying_how_to_install_it(monkeypatch, tmp_path):
    with pytest.raises(OAuthTestError, match="is not an executable"):
        OAuthTestServer(binary=str(tmp_path / "nowhere"))
    monkeypatch.setenv("OAUTHTEST_BIN", str(tmp_path / "nowhere"))
    with pytest.raises(OAuthTestError, match="OAUTHTEST_BIN"):
        OAuthTestServer()
    monkeypatch.delenv("OAUTHTEST_BIN")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OAuthTestError, match="cargo install"):
        OAuthTestServer()


def test_a_users_test_file_gets_the_fixtures_from_the_plugin(pytester, plugin_args):
    # What a user writes: no process management, just the fixtures.
    pytester.makepyfile(
        test_app=textwrap.dedent(
            """
            import json, urllib.parse, urllib.request

            def test_refresh(oauthtest):
                token = oauthtest.mint_refresh_token()
                body = urllib.parse.urlencode({
                    "grant_type": "refresh_token", "refresh_token": token,
                    "client_id": "mock-client-id.apps.googleusercontent.com",
                    "client_secret": "mock-client-secret"}).encode()
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(oauthtest.token_url, data=body, timeout=10) as r:
                    assert r.status == 200
                assert len(oauthtest.requests(endpoint="token")) == 1

            def test_scenario(oauthtest):
                assert oauthtest.requests() == []
                assert oauthtest.use_scenario("success")["refresh_token"]
            """
        )
    )
    binary = os.environ.get("OAUTHTEST_BIN")
    extra = [f"--oauthtest-bin={binary}"] if binary else []
    result = pytester.runpytest(*plugin_args, *extra, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_users_run_without_the_binary_fails_with_the_install_hint(pytester, plugin_args, tmp_path):
    pytester.makepyfile(test_app="def test_it(oauthtest):\n    pass\n")
    result = pytester.runpytest(*plugin_args, f"--oauthtest-bin={tmp_path / 'nowhere'}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*oauthtest:*is not an executable oauthtest binary*"])


def test_serve_options_from_the_command_line_reach_the_session_server(pytester, plugin_args):
    pytester.makepyfile(
        test_app=textwrap.dedent(
            """
            def test_scenario_in_force(oauthtest_server):
                assert oauthtest_server.scenario()["scenario"] == "invalid_grant_revoked"
            """
        )
    )
    result = pytester.runpytest(*plugin_args, "--oauthtest-arg=--scenario=invalid_grant_revoked")
    result.assert_outcomes(passed=1)


def test_google_credentials_without_google_auth_fail_with_the_install_hint(pytester, plugin_args):
    pytester.makeconftest(
        textwrap.dedent(
            """
            import sys, pytest

            @pytest.fixture(autouse=True)
            def no_google_auth(monkeypatch):  # as if google-auth were not installed
                monkeypatch.setitem(sys.modules, "google.oauth2.credentials", None)
            """
        )
    )
    pytester.makepyfile(test_app="def test_it(no_google_auth, google_credentials):\n    pass\n")
    result = pytester.runpytest(*plugin_args)
    result.assert_outcomes(errors=1)
    result.stdout.re_match_lines([r".*need google-auth: pip install 'pytest-oauthtest\[google-auth\]'"])
