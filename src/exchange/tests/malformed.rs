//! Malformed successes: protocol errors, never retried.

use super::*;

async fn protocol_error_for(response: ResponseTemplate) -> Exchange {
    let server = MockServer::start().await;
    mount(&server, response, 1).await;
    let exchange = refresh_against(&server).await;
    assert_eq!(exchange.attempts.len(), 1, "{exchange:?}");
    assert_eq!(exchange.attempts[0].class, attempt_class::PROTOCOL_ERROR);
    server.verify().await;
    exchange
}

#[tokio::test]
async fn malformed_json_success_is_a_protocol_error_without_retry() {
    let body = format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":"#);
    let exchange = protocol_error_for(json(200, &body)).await;
    assert_eq!(
        protocol_detail(&exchange),
        format!("body is not JSON (application/json, {} bytes)", body.len())
    );
}

#[tokio::test]
async fn html_success_body_is_a_protocol_error() {
    let body = format!("<html><body>{ACCESS_TOKEN}</body></html>");
    let exchange =
        protocol_error_for(ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), HTML))
            .await;
    assert_eq!(
        protocol_detail(&exchange),
        format!("body is not JSON (text/html, {} bytes)", body.len())
    );
}

#[tokio::test]
async fn success_without_access_token_is_a_protocol_error() {
    let exchange =
        protocol_error_for(json(200, r#"{"expires_in":3599,"token_type":"Bearer"}"#)).await;
    assert_eq!(
        protocol_detail(&exchange),
        "success body has no access_token"
    );
}

#[tokio::test]
async fn success_without_expires_in_is_a_protocol_error() {
    let body = format!(r#"{{"access_token":"{ACCESS_TOKEN}","token_type":"Bearer"}}"#);
    let exchange = protocol_error_for(json(200, &body)).await;
    assert_eq!(protocol_detail(&exchange), "success body has no expires_in");
}

#[tokio::test]
async fn expires_in_as_a_string_is_a_protocol_error_that_quotes_nothing() {
    let body = format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":"{ACCESS_TOKEN}","token_type":"Bearer"}}"#
    );
    let exchange = protocol_error_for(json(200, &body)).await;
    assert_eq!(
        protocol_detail(&exchange),
        "expires_in is a string, not a number"
    );
    assert_prints_no_secret(&exchange);
}

#[tokio::test]
async fn negative_expires_in_is_a_protocol_error() {
    let body =
        format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":-5,"token_type":"Bearer"}}"#);
    let exchange = protocol_error_for(json(200, &body)).await;
    assert_eq!(
        protocol_detail(&exchange),
        "expires_in is a negative or fractional number, not whole seconds"
    );
}

#[tokio::test]
async fn success_without_token_type_is_a_protocol_error() {
    let body = format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599}}"#);
    let exchange = protocol_error_for(json(200, &body)).await;
    assert_eq!(protocol_detail(&exchange), "success body has no token_type");
}

#[tokio::test]
async fn empty_success_body_is_a_protocol_error() {
    let exchange = protocol_error_for(json(200, "")).await;
    assert_eq!(protocol_detail(&exchange), "success body is empty");
}

#[tokio::test]
async fn success_body_that_is_not_an_object_is_a_protocol_error() {
    let exchange = protocol_error_for(json(200, &format!(r#"["{ACCESS_TOKEN}"]"#))).await;
    assert_eq!(
        protocol_detail(&exchange),
        "success body is an array, not a JSON object"
    );
}

#[tokio::test]
async fn oversized_success_body_is_a_protocol_error() {
    let body = format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"token_type":"Bearer","pad":"{}"}}"#,
        "x".repeat(300 * 1024)
    );
    let exchange = protocol_error_for(json(200, &body)).await;
    assert_eq!(
        protocol_detail(&exchange),
        "success body is longer than 262144 bytes"
    );
}

#[tokio::test]
async fn oversized_server_error_page_is_still_retry_later() {
    let server = MockServer::start().await;
    let page = format!("<html>{}</html>", "x".repeat(300 * 1024));
    mount(
        &server,
        ResponseTemplate::new(503).set_body_raw(page.into_bytes(), HTML),
        3,
    )
    .await;

    let exchange = refresh_against(&server).await;

    match &exchange.outcome {
        Outcome::RetryLater { reason, status, .. } => {
            assert_eq!(reason, "HTTP 503 with a body longer than 262144 bytes");
            assert_eq!(*status, Some(503));
        }
        other => panic!("expected retry_later, got {other:?}"),
    }
    server.verify().await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    mount(
        &server,
        ResponseTemplate::new(302).insert_header("location", format!("{}/elsewhere", server.uri())),
        1,
    )
    .await;
    Mock::given(path("/elsewhere"))
        .respond_with(google_success(&success_body()))
        .expect(0)
        .mount(&server)
        .await;

    let exchange = refresh_against(&server).await;

    assert_eq!(exchange.attempts.len(), 1);
    assert_eq!(exchange.attempts[0].status, Some(302));
    assert_eq!(
        protocol_detail(&exchange),
        "HTTP 302 redirect not followed (redirects are off: is the token URL right?)"
    );
    server.verify().await;
}
