//! tokeninfo, revoke, the Gmail profile call and unknown paths.

use std::time::Duration;

use mock_server::{Endpoint, Step, TokenStatus, DEFAULT_CLIENT_ID};

use crate::helpers::*;

const TOKENINFO_INVALID: &str = r#"{"error_description":"Invalid Value"}"#;
const REVOKE_INVALID: &str =
    r#"{"error":"invalid_token","error_description":"Token expired or revoked"}"#;

async fn access_token_via_refresh(google: &mock_server::MockGoogle) -> (String, String) {
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let answer = refresh(google, &rt).await;
    let at = answer.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    (rt, at)
}

#[tokio::test]
async fn tokeninfo_reports_a_live_token_with_string_values_then_invalid_after_the_clock_moves() {
    let google = google().await;
    let (_rt, at) = access_token_via_refresh(&google).await;

    let live = get(&format!("{}?access_token={at}", google.tokeninfo_url())).await;
    assert_eq!(live.status, 200, "{}", live.body);
    let json = live.json();
    for key in [
        "azp",
        "aud",
        "sub",
        "scope",
        "exp",
        "expires_in",
        "email",
        "email_verified",
        "access_type",
    ] {
        assert!(json[key].is_string(), "{key} must be a string: {json}");
    }
    assert_eq!(json["aud"], DEFAULT_CLIENT_ID);
    assert_eq!(json["scope"], GMAIL);
    assert_eq!(json["email"], "test-user@example.com");
    assert_eq!(json["email_verified"], "true");
    assert_eq!(json["access_type"], "offline");
    let expires_in: i64 = json["expires_in"]
        .as_str()
        .expect("string")
        .parse()
        .expect("number");
    assert!((3597..=3599).contains(&expires_in), "{expires_in}");
    let exp: i64 = json["exp"]
        .as_str()
        .expect("string")
        .parse()
        .expect("number");
    assert!((exp - google.now_unix() - 3599).abs() <= 2);

    google.advance_clock(Duration::from_secs(3600));
    let expired = get(&format!("{}?access_token={at}", google.tokeninfo_url())).await;
    expired.assert_exact(400, TOKENINFO_INVALID);
    get(&format!(
        "{}?access_token=ya29.unknown",
        google.tokeninfo_url()
    ))
    .await
    .assert_exact(400, TOKENINFO_INVALID);
}

#[tokio::test]
async fn tokeninfo_accepts_a_post_form_and_reports_seeded_tokens_as_online() {
    let google = google().await;
    let at = google.issue_access_token(
        DEFAULT_CLIENT_ID,
        &scopes(&[GMAIL]),
        Duration::from_secs(60),
    );
    let answer = post_form(&google.tokeninfo_url(), &[("access_token", &at)]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["access_type"], "online");
    assert_eq!(answer.json()["expires_in"], "60");
}

#[tokio::test]
async fn revoking_an_access_token_at_the_endpoint_kills_its_refresh_token() {
    let google = google().await;
    let (rt, at) = access_token_via_refresh(&google).await;

    let answer = post_form(&google.revoke_url(), &[("token", &at)]).await;
    answer.assert_exact(200, "");

    assert_eq!(google.access_token_status(&at), TokenStatus::Revoked);
    assert_eq!(google.refresh_token_status(&rt), TokenStatus::Revoked);
    refresh(&google, &rt).await.assert_exact(
        400,
        r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
    );
}

#[tokio::test]
async fn revoke_endpoint_rejects_unknown_and_already_revoked_tokens() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    post_form(&google.revoke_url(), &[("token", &rt)])
        .await
        .assert_exact(200, "");
    let again = post_form(&google.revoke_url(), &[("token", &rt)]).await;
    again.assert_exact(400, REVOKE_INVALID);
    again.assert_token_headers();
    post_form(&google.revoke_url(), &[("token", "1//0never-issued")])
        .await
        .assert_exact(400, REVOKE_INVALID);
    assert_eq!(google.journal()[1].error.as_deref(), Some("invalid_token"));
}

#[tokio::test]
async fn api_answers_200_for_a_live_token_and_401_for_expired_or_unknown_ones() {
    let google = google().await;
    let (_rt, at) = access_token_via_refresh(&google).await;

    let ok = get_profile(&google, &at).await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.body,
        r#"{"emailAddress":"test-user@example.com","messagesTotal":1234,"threadsTotal":987,"historyId":"4815162342"}"#
    );

    let unknown = get_profile(&google, "ya29.unknown").await;
    assert_unauthenticated(&unknown);
    google.advance_clock(Duration::from_secs(3599));
    assert_unauthenticated(&get_profile(&google, &at).await);
    let no_header = get(&google.api_url()).await;
    assert_unauthenticated(&no_header);
}

fn assert_unauthenticated(answer: &Answer) {
    answer.assert_exact(401, mock_server::wire::API_UNAUTHENTICATED_BODY);
    assert!(answer.body.starts_with(
        r#"{"error":{"code":401,"message":"Request had invalid authentication credentials. "#
    ));
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#)
    );
}

#[tokio::test]
async fn api_script_serves_a_canned_401_first_then_google() {
    let google = google().await;
    let (_rt, at) = access_token_via_refresh(&google).await;
    google.set_api_script(vec![Step::respond(
        401,
        mock_server::wire::API_UNAUTHENTICATED_BODY,
    )
    .with_header("www-authenticate", mock_server::wire::API_WWW_AUTHENTICATE)]);

    assert_unauthenticated(&get_profile(&google, &at).await);
    assert_eq!(get_profile(&google, &at).await.status, 200);
    assert_eq!(
        google.token_request_count(),
        1,
        "api script does not touch the token count"
    );
    let journal = google.journal();
    assert_eq!(journal[1].endpoint, Endpoint::Api);
    assert_eq!(journal[1].error.as_deref(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn api_drop_step_closes_the_connection() {
    let google = google().await;
    let at = google.issue_access_token(
        DEFAULT_CLIENT_ID,
        &scopes(&[GMAIL]),
        Duration::from_secs(60),
    );
    google.set_api_script(vec![Step::drop()]);
    let result = http().get(google.api_url()).bearer_auth(&at).send().await;
    assert!(result.is_err(), "dropped");
    assert_eq!(get_profile(&google, &at).await.status, 200);
}

#[tokio::test]
async fn unknown_path_gets_404_and_is_journaled_as_other() {
    let google = google().await;
    let answer = get(&format!("{}/oauth2/v9/token", google.uri())).await;
    assert_eq!(answer.status, 404);
    let entry = &google.journal()[0];
    assert_eq!(entry.endpoint, Endpoint::Other);
    assert_eq!(entry.status, Some(404));
    assert_eq!(google.token_request_count(), 0);
}

#[tokio::test]
async fn discovery_document_names_this_mocks_own_endpoints_and_googles_issuer_and_keys() {
    let google = google().await;
    let answer = get(&google.discovery_url()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let doc = answer.json();
    assert_eq!(doc["issuer"], "https://accounts.google.com");
    assert_eq!(doc["token_endpoint"], google.token_url());
    assert_eq!(doc["revocation_endpoint"], google.revoke_url());
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{}/o/oauth2/v2/auth", google.uri())
    );
    assert_eq!(
        doc["userinfo_endpoint"],
        format!("{}/v1/userinfo", google.uri())
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["plain", "S256"])
    );
    assert!(doc["device_authorization_endpoint"].is_string());
    assert_eq!(doc["grant_types_supported"][0], "authorization_code");
    let jwks = doc["jwks_uri"].as_str().expect("jwks_uri").to_string();
    assert!(jwks.starts_with(&google.uri()), "{jwks}");
    let keys = get(&jwks).await;
    assert_eq!(keys.status, 200);
    assert_eq!(keys.json()["keys"][0]["kty"], "RSA");
    let journal = google.journal();
    assert_eq!(journal.len(), 2);
    assert!(journal.iter().all(|e| e.endpoint == Endpoint::Discovery));
    assert_eq!(Endpoint::from_name("discovery"), Some(Endpoint::Discovery));
}
