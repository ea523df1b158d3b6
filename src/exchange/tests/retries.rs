//! Retries and their waits: which answers are retried, how often, how far apart.

use super::*;

#[tokio::test]
async fn server_error_then_success_refreshes_on_the_second_attempt() {
    let server = MockServer::start().await;
    mount_first(&server, json(500, r#"{"error":"internal_failure"}"#), 1).await;
    mount(&server, google_success(&success_body()), 1).await;

    let exchange = refresh_against(&server).await;

    assert_eq!(exchange.outcome.code(), "refreshed");
    let statuses: Vec<_> = exchange.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![Some(500), Some(200)]);
    assert_eq!(exchange.attempts[0].class, attempt_class::SERVER_ERROR);
    assert_eq!(exchange.attempts[0].waited_before, Duration::ZERO);
    let backoff = exchange.attempts[1].waited_before;
    assert!(
        backoff >= Duration::from_micros(1800) && backoff <= Duration::from_micros(2200),
        "first backoff is 2 ms ± 10 %: {backoff:?}"
    );
}

#[tokio::test]
async fn service_unavailable_until_retries_run_out_makes_exactly_max_attempts_requests() {
    let server = MockServer::start().await;
    mount(&server, json(503, r#"{"error":"internal_failure"}"#), 3).await;

    let exchange = refresh_against(&server).await;

    assert_eq!(exchange.attempts.len(), 3);
    match &exchange.outcome {
        Outcome::RetryLater {
            reason,
            status,
            retry_after,
        } => {
            assert_eq!(reason, "HTTP 503: internal_failure");
            assert_eq!(*status, Some(503));
            assert_eq!(*retry_after, None);
        }
        other => panic!("expected retry_later, got {other:?}"),
    }
    let waits: Vec<_> = exchange.attempts.iter().map(|a| a.waited_before).collect();
    assert_eq!(waits[0], Duration::ZERO);
    assert!(waits[1] >= Duration::from_micros(1800) && waits[1] <= Duration::from_micros(2200));
    assert!(waits[2] >= Duration::from_micros(3600) && waits[2] <= Duration::from_micros(4400));
    server.verify().await;
}

#[tokio::test]
async fn every_transient_status_is_retried() {
    for status in [500_u16, 502, 503, 504, 408, 429] {
        let server = MockServer::start().await;
        mount(&server, json(status, r#"{"error":"something"}"#), 3).await;

        let exchange = refresh_against(&server).await;

        assert_eq!(exchange.outcome.code(), "retry_later", "HTTP {status}");
        assert_eq!(exchange.attempts.len(), 3, "HTTP {status}");
        server.verify().await;
    }
}

#[tokio::test]
async fn retry_after_zero_is_honoured_instead_of_a_long_backoff() {
    let server = MockServer::start().await;
    mount_first(
        &server,
        json(429, r#"{"error":"rate_limit_exceeded"}"#).insert_header("retry-after", "0"),
        1,
    )
    .await;
    mount(&server, google_success(&success_body()), 1).await;
    let mut config = config_for(&server);
    config.retry.initial_backoff = Duration::from_secs(60);
    config.retry.jitter = 0.0;
    let started = Instant::now();

    let exchange = refresh_with(config).await;

    assert_eq!(exchange.outcome.code(), "refreshed");
    assert_eq!(exchange.attempts[0].status, Some(429));
    assert_eq!(exchange.attempts[0].class, attempt_class::RATE_LIMITED);
    assert_eq!(exchange.attempts[1].waited_before, Duration::ZERO);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "did not back off 60 s"
    );
}

#[tokio::test]
async fn retry_after_longer_than_the_cap_waits_only_the_cap() {
    let server = MockServer::start().await;
    mount_first(
        &server,
        json(429, r#"{"error":"rate_limit_exceeded"}"#).insert_header("retry-after", "3600"),
        1,
    )
    .await;
    mount(&server, google_success(&success_body()), 1).await;
    let started = Instant::now();

    let exchange = refresh_against(&server).await;

    let elapsed = started.elapsed();
    assert_eq!(exchange.outcome.code(), "refreshed");
    assert_eq!(
        exchange.attempts[1].waited_before,
        Duration::from_millis(50)
    );
    assert!(
        elapsed >= Duration::from_millis(50),
        "slept the cap: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(30), "did not sleep an hour");
}

#[tokio::test]
async fn retry_after_as_an_http_date_in_the_past_means_retry_now() {
    let server = MockServer::start().await;
    let past = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    mount_first(
        &server,
        json(503, r#"{"error":"internal_failure"}"#).insert_header("retry-after", past.as_str()),
        1,
    )
    .await;
    mount(&server, google_success(&success_body()), 1).await;
    let mut config = config_for(&server);
    config.retry.initial_backoff = Duration::from_secs(60);

    let exchange = refresh_with(config).await;

    assert_eq!(exchange.outcome.code(), "refreshed");
    assert_eq!(exchange.attempts[1].waited_before, Duration::ZERO);
}

#[tokio::test]
async fn retry_later_reports_the_servers_retry_after_uncapped() {
    let server = MockServer::start().await;
    mount(
        &server,
        json(503, r#"{"error":"internal_failure"}"#).insert_header("retry-after", "120"),
        2,
    )
    .await;
    let mut config = config_for(&server);
    config.retry.max_attempts = 2;
    config.retry.max_retry_after = Duration::from_millis(5);

    let exchange = refresh_with(config).await;

    assert_eq!(exchange.attempts[1].waited_before, Duration::from_millis(5));
    match &exchange.outcome {
        Outcome::RetryLater { retry_after, .. } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(120)));
        }
        other => panic!("expected retry_later, got {other:?}"),
    }
    assert_eq!(
        exchange.outcome.to_string(),
        "retry_later: HTTP 503: internal_failure (server asked to wait 120 s)"
    );
}

#[tokio::test]
async fn zero_max_attempts_still_tries_once() {
    let server = MockServer::start().await;
    mount(&server, json(503, r#"{"error":"internal_failure"}"#), 1).await;
    let mut config = config_for(&server);
    config.retry.max_attempts = 0;

    let exchange = refresh_with(config).await;

    assert_eq!(exchange.attempts.len(), 1);
    assert_eq!(exchange.outcome.code(), "retry_later");
}
