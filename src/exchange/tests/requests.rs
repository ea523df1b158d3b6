//! What is sent: the grant, client authentication, headers, no redirects followed.

use super::*;

/// The one request the server received, as a header lookup and form fields.
async fn only_request(server: &MockServer) -> (wiremock::Request, HashMap<String, String>) {
    let mut requests = server
        .received_requests()
        .await
        .expect("request recording is on");
    assert_eq!(requests.len(), 1);
    let request = requests.remove(0);
    let form = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    (request, form)
}

#[tokio::test]
async fn request_is_a_form_encoded_refresh_token_grant_without_scope() {
    let server = MockServer::start().await;
    mount(&server, google_success(&success_body()), 1).await;

    refresh_against(&server).await;

    let (request, form) = only_request(&server).await;
    assert_eq!(
        request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("refresh_token")
    );
    assert_eq!(
        form.get("refresh_token").map(String::as_str),
        Some(REFRESH_TOKEN)
    );
    assert!(
        !form.contains_key("scope"),
        "no scope asked for: {:?}",
        form.keys()
    );
}

#[tokio::test]
async fn requested_scopes_are_sent_space_separated() {
    let server = MockServer::start().await;
    mount(&server, google_success(&success_body()), 1).await;
    let secrets = Secrets::new();
    let scopes = vec!["openid".to_owned(), GMAIL_SCOPE.to_owned()];
    let request = RefreshRequest {
        scopes: &scopes,
        ..secrets.request()
    };
    let config = config_for(&server);
    let http = build_http_client(config.request_timeout).expect("HTTP client builds");

    TokenExchanger::new(http, config).refresh(&request).await;

    let (_, form) = only_request(&server).await;
    assert_eq!(
        form.get("scope").map(String::as_str),
        Some(format!("openid {GMAIL_SCOPE}").as_str())
    );
}

#[tokio::test]
async fn client_credentials_go_in_a_basic_auth_header_by_default() {
    let server = MockServer::start().await;
    mount(&server, google_success(&success_body()), 1).await;

    refresh_against(&server).await;

    let (request, form) = only_request(&server).await;
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    let id: String = url::form_urlencoded::byte_serialize(CLIENT_ID.as_bytes()).collect();
    let secret: String = url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect();
    let expected = format!("Basic {}", BASE64_STANDARD.encode(format!("{id}:{secret}")));
    assert_eq!(
        request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(expected.as_str())
    );
    assert!(!form.contains_key("client_secret"));
    assert!(!form.contains_key("client_id"));
}

#[tokio::test]
async fn client_credentials_go_in_the_body_when_auth_in_body_is_set() {
    let server = MockServer::start().await;
    mount(&server, google_success(&success_body()), 1).await;
    let mut config = config_for(&server);
    config.auth_in_body = true;

    refresh_with(config).await;

    let (request, form) = only_request(&server).await;
    assert!(request.headers.get("authorization").is_none());
    assert_eq!(form.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(
        form.get("client_secret").map(String::as_str),
        Some(CLIENT_SECRET)
    );
}

#[tokio::test]
async fn client_without_a_secret_sends_only_its_id_in_the_body() {
    let server = MockServer::start().await;
    mount(&server, google_success(&success_body()), 1).await;
    let secrets = Secrets::new();
    let request = RefreshRequest {
        client_secret: None,
        ..secrets.request()
    };
    let config = config_for(&server);
    let http = build_http_client(config.request_timeout).expect("HTTP client builds");

    let exchange = TokenExchanger::new(http, config).refresh(&request).await;

    assert_eq!(exchange.outcome.code(), "refreshed");
    let (request, form) = only_request(&server).await;
    assert!(request.headers.get("authorization").is_none());
    assert_eq!(form.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert!(!form.contains_key("client_secret"));
}
