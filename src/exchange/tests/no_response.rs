//! No HTTP response at all: timeouts, resets, refused connections.

use super::*;

#[tokio::test]
async fn response_slower_than_the_request_timeout_is_retried_then_retry_later() {
    let server = MockServer::start().await;
    mount(
        &server,
        google_success(&success_body()).set_delay(Duration::from_secs(3)),
        2,
    )
    .await;
    let mut config = config_for(&server);
    config.request_timeout = Duration::from_millis(150);
    config.retry.max_attempts = 2;
    let started = Instant::now();

    let exchange = refresh_with(config).await;

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "did not wait for the slow response"
    );
    assert_eq!(exchange.attempts.len(), 2);
    for attempt in &exchange.attempts {
        assert_eq!(attempt.status, None);
        assert_eq!(attempt.class, attempt_class::TIMEOUT);
    }
    match &exchange.outcome {
        Outcome::RetryLater { reason, status, .. } => {
            assert_eq!(reason, "no complete response within 150ms");
            assert_eq!(*status, None);
        }
        other => panic!("expected retry_later, got {other:?}"),
    }
}

#[tokio::test]
async fn per_request_timeout_applies_even_when_the_injected_client_waits_longer() {
    let server = MockServer::start().await;
    mount(
        &server,
        google_success(&success_body()).set_delay(Duration::from_secs(3)),
        1,
    )
    .await;
    let mut config = config_for(&server);
    config.request_timeout = Duration::from_millis(100);
    config.retry = RetryPolicy::no_retries();
    let http = build_http_client(Duration::from_secs(60)).expect("HTTP client builds");
    let secrets = Secrets::new();

    let exchange = TokenExchanger::new(http, config)
        .refresh(&secrets.request())
        .await;

    assert_eq!(exchange.attempts[0].class, attempt_class::TIMEOUT);
}

#[tokio::test]
async fn dropped_connection_is_retried_then_retry_later() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with_err(|_: &wiremock::Request| {
            io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by test")
        })
        .expect(3)
        .mount(&server)
        .await;

    let exchange = refresh_against(&server).await;

    assert_eq!(exchange.attempts.len(), 3);
    for attempt in &exchange.attempts {
        assert_eq!(attempt.status, None);
        assert_eq!(attempt.class, attempt_class::CONNECTION);
    }
    match &exchange.outcome {
        Outcome::RetryLater { reason, status, .. } => {
            assert!(
                reason.starts_with("connection failed before a complete response"),
                "{reason}"
            );
            assert_eq!(*status, None);
        }
        other => panic!("expected retry_later, got {other:?}"),
    }
    server.verify().await;
}

#[tokio::test]
async fn refused_connection_is_retry_later() {
    // Bind a port, then free it: nothing listens there any more.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.local_addr().expect("local addr").port()
    };
    let mut config = ExchangeConfig::with_token_url(&format!("http://127.0.0.1:{port}/token"))
        .expect("URL parses");
    config.retry = RetryPolicy {
        max_attempts: 2,
        ..fast_retry()
    };

    let exchange = refresh_with(config).await;

    assert_eq!(exchange.outcome.code(), "retry_later");
    assert_eq!(exchange.attempts.len(), 2);
    assert_eq!(exchange.attempts[0].class, attempt_class::CONNECTION);
    assert!(exchange.outcome.to_string().contains("could not connect"));
}
