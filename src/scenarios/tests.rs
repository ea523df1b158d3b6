//! Scenario files: parsing, limits, the shipped set.

use super::*;

#[test]
fn every_shipped_scenario_parses() {
    assert!(
        BUILTIN.len() >= 25,
        "only {} shipped scenarios",
        BUILTIN.len()
    );
    for (file, text) in BUILTIN {
        parse(file, text).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn unknown_field_is_reported_with_file_line_and_field() {
    let text = "description = \"x\"\n\n[expect]\noutcome = \"refreshed\"\ntoken_requests = 1\nstate = \"active\"\napi_call = \"succeeded\"\ntoken_reqests = 2\n";
    let e = parse("my.toml", text).unwrap_err().to_string();
    assert!(e.starts_with("my.toml: line 8"), "{e}");
    assert!(e.contains("token_reqests"), "{e}");
}

#[test]
fn bad_values_are_reported_with_line_and_field() {
    let text = "[expect]\noutcome = \"refreshd\"\ntoken_requests = 1\nstate = \"active\"\napi_call = \"succeeded\"\n";
    let e = parse("x.toml", text).unwrap_err().to_string();
    assert!(e.contains("line 2: expect.outcome"), "{e}");
    let text = "[[token]]\naction = \"explode\"\n[expect]\noutcome = \"refreshed\"\ntoken_requests = 1\nstate = \"active\"\napi_call = \"succeeded\"\n";
    let e = parse("x.toml", text).unwrap_err().to_string();
    assert!(e.contains("[[token]] #1") && e.contains("explode"), "{e}");
    let text = "[expect]\noutcome = \"refreshed\"\ntoken_requests = \"one\"\nstate = \"active\"\napi_call = \"succeeded\"\n";
    let e = parse("x.toml", text).unwrap_err().to_string();
    assert!(e.contains("line 3"), "{e}");
}

#[test]
fn target_range_defaults_to_the_expected_count_and_must_be_ordered() {
    let base = "[expect]\noutcome = \"refreshed\"\ntoken_requests = 2\nstate = \"active\"\napi_call = \"succeeded\"\n";
    let plain = parse("x.toml", base).unwrap();
    assert_eq!(plain.target_token_requests(), (2, 2));
    let widened = parse(
        "x.toml",
        &format!("{base}[target]\ntoken_requests_min = 1\n"),
    )
    .unwrap();
    assert_eq!(widened.target_token_requests(), (1, 2));
    let e = parse(
        "x.toml",
        &format!("{base}[target]\ntoken_requests_min = 3\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 7: target: token_requests_min (3)"), "{e}");
}

#[test]
fn waits_and_clock_moves_beyond_their_limits_are_named_with_line_and_limit() {
    let expect = "[expect]\noutcome = \"refreshed\"\ntoken_requests = 1\nstate = \"active\"\napi_call = \"succeeded\"\n";
    let cases = [
        ("[mock]\nadvance_clock_hours = 18446744073709551615\n", "line 2: mock.advance_clock_hours = 18446744073709551615 is out of range: it must be from 0 to 876600"),
        ("[engine]\ninitial_backoff_ms = 99999999999\n", "line 2: engine.initial_backoff_ms = 99999999999 is out of range: it must be from 0 to 10000"),
        ("[engine]\nretry_after_cap_ms = 99999999999\n", "line 2: engine.retry_after_cap_ms = 99999999999 is out of range: it must be from 0 to 60000"),
        ("[engine]\nrequest_timeout_ms = 0\n", "line 2: engine.request_timeout_ms = 0 is out of range: it must be from 1 to 60000"),
        ("[engine]\nmax_attempts = 4000000000\n", "line 2: engine.max_attempts = 4000000000 is out of range: it must be from 0 to 10"),
        ("[[token]]\nstatus = 503\ndelay_ms = 99999999999\n", "[[token]] #1: delay_ms = 99999999999 is out of range: it must be from 0 to 60000"),
    ];
    for (setting, message) in cases {
        let e = parse("big.toml", &format!("{setting}{expect}"))
            .expect_err(setting)
            .to_string();
        assert_eq!(e, format!("big.toml: {message}"), "{setting}");
    }
    let at_the_limits = "[mock]\nadvance_clock_hours = 876600\n[engine]\nrequest_timeout_ms = 60000\nmax_attempts = 10\ninitial_backoff_ms = 10000\nretry_after_cap_ms = 60000\n";
    parse("edge.toml", &format!("{at_the_limits}{expect}")).expect("limits are inclusive");
}

#[test]
fn repeat_answers_that_many_requests_and_must_be_from_one_to_the_maximum() {
    let base = "[expect]\noutcome = \"retry_later\"\ntoken_requests = 3\nstate = \"active\"\napi_call = \"not_made\"\n";
    let lasting = parse(
        "x.toml",
        &format!("[[token]]\nstatus = 503\nrepeat = 4\n[[token]]\nstatus = 500\n{base}"),
    )
    .unwrap();
    let steps = mock_steps(&lasting.token).unwrap();
    assert_eq!(steps.len(), 5);
    assert_eq!(steps[0], steps[3]);
    assert_ne!(steps[3], steps[4]);
    for bad in ["0", "1001"] {
        let e = parse(
            "x.toml",
            &format!("[[token]]\nstatus = 503\nrepeat = {bad}\n{base}"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("[[token]] #1: repeat must be from 1 to 1000"),
            "{e}"
        );
    }
}

#[test]
fn outage_scenarios_outlast_every_client_their_target_range_accepts() {
    for name in ["unavailable_until_retries_run_out", "html_403_sorry"] {
        let (file, text) = BUILTIN
            .iter()
            .find(|(f, _)| f.trim_end_matches(".toml") == name)
            .unwrap_or_else(|| panic!("{name} is shipped"));
        let scenario = parse(file, text).unwrap();
        let (fewest, most) = scenario.target_token_requests();
        assert_eq!(fewest, 1, "{name}: a client that does not retry is fair");
        assert!(
            most >= scenario.expect.token_requests,
            "{name}: as many tries as the engine makes are fair"
        );
        let steps = mock_steps(&scenario.token).unwrap();
        assert!(
            steps.len() > most,
            "{name}: the outage must outlast {most} tries"
        );
        assert!(
            steps.iter().all(|s| s == &steps[0]),
            "{name}: one failure, repeated"
        );
    }
}

#[test]
fn missing_expect_is_an_error() {
    assert!(parse("x.toml", "description = \"no expectations\"\n").is_err());
}

#[test]
fn a_steps_clock_advance_and_a_revocation_delay_beyond_the_clock_limit_are_named() {
    let expect = "[expect]\noutcome = \"needs_reconnect\"\ntoken_requests = 1\nstate = \"needs_reconnect\"\napi_call = \"failed\"\n";
    let e = parse(
        "far.toml",
        &format!("[[api]]\nadvance_clock_seconds = 99999999999\n{expect}"),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "far.toml: [[api]] #1: advance_clock_seconds = 99999999999 is out of range: it must be from 0 to 3155760000"
    );
    let e = parse(
        "far.toml",
        &format!("[credential]\nrefresh_token = \"revoked\"\n[mock]\nrevocation_delay_seconds = 99999999999\n{expect}"),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "far.toml: line 4: mock.revocation_delay_seconds = 99999999999 is out of range: it must be from 0 to 3155760000"
    );
    let delayed = parse(
        "ok.toml",
        &format!("[credential]\naccess_token = \"revoked\"\n[mock]\nrevocation_delay_seconds = 60\n[[api]]\nadvance_clock_seconds = 61\n{expect}"),
    )
    .expect("a delay with a revoked access token");
    let step = delayed.api[0].to_mock_step().unwrap();
    assert_eq!(step.advance_clock, std::time::Duration::from_secs(61));
}
