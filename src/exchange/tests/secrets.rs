//! Secrets never print: messages, `Debug` strings and log lines of every outcome.

use super::*;

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .expect("log buffer lock")
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_planted_secret_reaches_debug_output_messages_or_logs() {
    let echoing_error = format!(
        r#"{{"error":"invalid_grant","error_description":"token {REFRESH_TOKEN} of client {CLIENT_SECRET} is revoked","error_subtype":"{REFRESH_TOKEN}"}}"#
    );
    let full_success = format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"scope":"openid","token_type":"Bearer","id_token":"{ID_TOKEN}","refresh_token":"{ROTATED_REFRESH_TOKEN}"}}"#
    );
    let scenarios: Vec<(&str, ResponseTemplate)> = vec![
        ("full success", google_success(&full_success)),
        ("error echoing our secrets", json(400, &echoing_error)),
        (
            "expires_in holds a token",
            json(
                200,
                &format!(
                    r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":"{ID_TOKEN}","token_type":"Bearer"}}"#
                ),
            ),
        ),
        (
            "access_token is a number, id_token in body",
            json(
                200,
                &format!(
                    r#"{{"access_token":1,"expires_in":3599,"token_type":"Bearer","id_token":"{ID_TOKEN}"}}"#
                ),
            ),
        ),
        (
            "truncated JSON",
            json(200, &format!(r#"{{"access_token":"{ACCESS_TOKEN}""#)),
        ),
        (
            "HTML error page quoting the refresh token",
            ResponseTemplate::new(403).set_body_raw(
                format!("<html>{REFRESH_TOKEN} {CLIENT_SECRET}</html>").into_bytes(),
                HTML,
            ),
        ),
        (
            "JSON error that is not OAuth",
            json(
                400,
                &format!(r#"{{"error":{{"message":"{REFRESH_TOKEN}"}}}}"#),
            ),
        ),
        (
            "transient error echoing the secret",
            json(
                503,
                &format!(r#"{{"error":"internal_failure","error_description":"{CLIENT_SECRET}"}}"#),
            ),
        ),
    ];

    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests run on other threads without a subscriber. While only one scoped subscriber
    // exists, `tracing` computes a callsite's interest from whichever thread hits it first, so
    // this module's callsites could be cached as "never". A second live dispatcher makes
    // `tracing` ask every registered subscriber; then re-ask for callsites already cached.
    let _second_dispatcher = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    tracing::callsite::rebuild_interest_cache();

    let secrets = Secrets::new();
    let request = secrets.request();
    let request_debug = format!("{request:?}");
    for secret in PLANTED {
        assert!(!request_debug.contains(secret), "{request_debug}");
    }

    for (name, response) in scenarios {
        let server = MockServer::start().await;
        mount(&server, response, 1..=3).await;
        let exchange = refresh_against(&server).await;
        let printed = [format!("{exchange:?}"), exchange.outcome.to_string()];
        for text in &printed {
            for secret in PLANTED {
                assert!(
                    !text.contains(secret),
                    "{name}: {secret:?} leaked into {text}"
                );
            }
        }
        if let Outcome::Refreshed(grant) = &exchange.outcome {
            let debug = format!("{grant:?}");
            assert!(debug.contains("access_token: \"[redacted]\""), "{debug}");
            assert!(debug.contains("id_token: Some(\"[redacted]\")"), "{debug}");
            assert!(
                debug.contains("refresh_token: Some(\"[redacted]\")"),
                "{debug}"
            );
        }
    }

    let logged =
        String::from_utf8(logs.0.lock().expect("log buffer lock").clone()).expect("logs are UTF-8");
    assert!(
        logged.contains("token exchange finished"),
        "the subscriber captured the module's logs: {logged}"
    );
    for secret in PLANTED {
        assert!(
            !logged.contains(secret),
            "{secret:?} leaked into the logs:\n{logged}"
        );
    }
}

#[tokio::test]
async fn server_text_echoing_our_secrets_is_scrubbed() {
    let server = MockServer::start().await;
    mount(
        &server,
        json(
            400,
            &format!(
                r#"{{"error":"invalid_grant","error_description":"bad token {REFRESH_TOKEN}"}}"#
            ),
        ),
        1,
    )
    .await;

    let exchange = refresh_against(&server).await;

    match &exchange.outcome {
        Outcome::NeedsReconnect { description, .. } => {
            assert_eq!(description.as_deref(), Some("bad token [redacted]"));
        }
        other => panic!("expected needs_reconnect, got {other:?}"),
    }
}

#[tokio::test]
async fn server_text_echoing_a_url_encoded_secret_is_scrubbed() {
    let server = MockServer::start().await;
    let encoded: String = url::form_urlencoded::byte_serialize(REFRESH_TOKEN.as_bytes()).collect();
    assert_ne!(encoded, REFRESH_TOKEN, "the planted token needs encoding");
    mount(
        &server,
        json(
            400,
            &format!(
                r#"{{"error":"invalid_request","error_description":"refresh_token={encoded}"}}"#
            ),
        ),
        1,
    )
    .await;

    let exchange = refresh_against(&server).await;

    match &exchange.outcome {
        Outcome::RequestRejected { description, .. } => {
            assert_eq!(description.as_deref(), Some("refresh_token=[redacted]"));
        }
        other => panic!("expected request_rejected, got {other:?}"),
    }
}
