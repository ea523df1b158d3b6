//! Successful refreshes: the token, its expiry, scopes, type, id_token and rotation.

use super::*;

#[tokio::test]
async fn success_returns_the_access_token_with_expiry_scopes_and_token_type() {
    let server = MockServer::start().await;
    mount(&server, google_success(&success_body()), 1).await;

    let exchange = refresh_against(&server).await;

    let grant = grant(&exchange);
    assert_eq!(grant.access_token.expose_secret(), ACCESS_TOKEN);
    assert_eq!(grant.expires_in, Duration::from_secs(3599));
    assert_eq!(grant.scopes, vec![GMAIL_SCOPE.to_owned()]);
    assert_eq!(grant.token_type, "Bearer");
    assert!(grant.refresh_token.is_none(), "Google does not rotate");
    assert!(grant.id_token.is_none());
    assert_eq!(exchange.attempts.len(), 1);
    assert_eq!(exchange.attempts[0].status, Some(200));
    assert_eq!(exchange.attempts[0].class, attempt_class::REFRESHED);
    assert_eq!(exchange.attempts[0].waited_before, Duration::ZERO);
    assert_eq!(
        exchange.outcome.to_string(),
        format!("refreshed: new Bearer access token valid for 3599 s, scopes: {GMAIL_SCOPE}")
    );
}

#[tokio::test]
async fn success_splits_several_granted_scopes() {
    let server = MockServer::start().await;
    let body = format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"scope":"openid {GMAIL_SCOPE} email","token_type":"Bearer"}}"#
    );
    mount(&server, google_success(&body), 1).await;

    let exchange = refresh_against(&server).await;

    assert_eq!(
        grant(&exchange).scopes,
        vec![
            "openid".to_owned(),
            GMAIL_SCOPE.to_owned(),
            "email".to_owned()
        ]
    );
}

#[tokio::test]
async fn success_with_an_id_token_carries_the_id_token() {
    let server = MockServer::start().await;
    let body = format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"scope":"openid {GMAIL_SCOPE}","token_type":"Bearer","id_token":"{ID_TOKEN}"}}"#
    );
    mount(&server, google_success(&body), 1).await;

    let exchange = refresh_against(&server).await;

    let grant = grant(&exchange);
    assert_eq!(
        grant.id_token.as_ref().map(|t| t.expose_secret()),
        Some(ID_TOKEN)
    );
    assert!(grant.refresh_token.is_none());
}

#[tokio::test]
async fn success_with_a_rotated_refresh_token_returns_the_new_refresh_token() {
    let server = MockServer::start().await;
    let body = format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"scope":"{GMAIL_SCOPE}","token_type":"Bearer","refresh_token":"{ROTATED_REFRESH_TOKEN}"}}"#
    );
    mount(&server, google_success(&body), 1).await;

    let exchange = refresh_against(&server).await;

    let grant = grant(&exchange);
    assert_eq!(
        grant.refresh_token.as_ref().map(|t| t.expose_secret()),
        Some(ROTATED_REFRESH_TOKEN)
    );
    assert!(exchange
        .outcome
        .to_string()
        .ends_with("refresh token rotated"));
}

#[tokio::test]
async fn success_without_a_scope_field_has_no_scopes() {
    let server = MockServer::start().await;
    let body =
        format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"token_type":"Bearer"}}"#);
    mount(&server, google_success(&body), 1).await;

    let exchange = refresh_against(&server).await;

    assert!(grant(&exchange).scopes.is_empty());
}
