//! The token endpoint under `Action::Google`: every check in Google's order, every answer exact.

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use mock_server::wire::{self, reference_errors};
use mock_server::{
    ClientAuth, ClientRegistration, MockConfig, TokenStatus, DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET, TESTING_APP_REFRESH_TOKEN_TTL,
};

use crate::helpers::*;

pub(crate) fn reference_body(case: &str) -> String {
    reference_errors()
        .into_iter()
        .find(|row| row.case == case)
        .unwrap_or_else(|| panic!("no reference row {case}"))
        .body
}

#[tokio::test]
async fn refresh_with_body_credentials_returns_googles_success_body_and_headers() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));

    let answer = refresh(&google, &rt).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.assert_token_headers();
    let json = answer.json();
    let access_token = json["access_token"].as_str().expect("access_token");
    assert!(access_token.starts_with("ya29."));
    let expected = format!(
        r#"{{"access_token":"{access_token}","expires_in":3599,"scope":"{GMAIL}","token_type":"Bearer"}}"#
    );
    assert_eq!(answer.body, expected, "exact body, Google's key order");
    assert_eq!(google.access_token_status(access_token), TokenStatus::Live);
    assert_eq!(
        google.refresh_token_status(&rt),
        TokenStatus::Live,
        "no rotation"
    );
}

#[tokio::test]
async fn refresh_with_basic_auth_succeeds_and_is_journaled_as_basic() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));

    let answer = read(
        http()
            .post(google.token_url())
            .basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
            .send()
            .await
            .expect("request completes"),
    )
    .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.assert_token_headers();
    let entry = &google.journal()[0];
    assert_eq!(entry.client_auth, ClientAuth::Basic);
    assert_eq!(entry.client_id.as_deref(), Some(DEFAULT_CLIENT_ID));
}

#[tokio::test]
async fn basic_auth_credentials_are_form_urlencoded_before_base64_as_rfc_6749_says() {
    let secret = "s3:cr+t/&=";
    let google = google_with(MockConfig {
        clients: vec![ClientRegistration::new("odd client", secret)],
        ..MockConfig::default()
    })
    .await;
    let rt = google.issue_refresh_token("odd client", &scopes(&[GMAIL]));
    let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let header = format!("Basic {}", STANDARD.encode(format!("odd+client:{encoded}")));

    let answer = read(
        http()
            .post(google.token_url())
            .header("authorization", header)
            .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
            .send()
            .await
            .expect("request completes"),
    )
    .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn unknown_client_gets_invalid_client_not_found() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let answer = post_form(
        &google.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", "nobody.apps.googleusercontent.com"),
            ("client_secret", "x"),
        ],
    )
    .await;
    answer.assert_exact(401, &reference_body("invalid_client_not_found"));
    answer.assert_token_headers();
}

#[tokio::test]
async fn wrong_or_missing_secret_gets_invalid_client_unauthorized() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let wrong = post_form(
        &google.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    wrong.assert_exact(401, &reference_body("invalid_client_unauthorized"));
    let missing = post_form(
        &google.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", DEFAULT_CLIENT_ID),
        ],
    )
    .await;
    missing.assert_exact(401, &reference_body("invalid_client_unauthorized"));
}

#[tokio::test]
async fn deleted_client_gets_deleted_client_from_config_or_at_runtime() {
    let google = google_with(MockConfig {
        clients: vec![ClientRegistration {
            deleted: true,
            ..ClientRegistration::new(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        }],
        ..MockConfig::default()
    })
    .await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    refresh(&google, &rt)
        .await
        .assert_exact(401, &reference_body("deleted_client"));

    assert!(google.set_client_deleted(DEFAULT_CLIENT_ID, false));
    assert_eq!(refresh(&google, &rt).await.status, 200);
    assert!(google.set_client_deleted(DEFAULT_CLIENT_ID, true));
    refresh(&google, &rt)
        .await
        .assert_exact(401, &reference_body("deleted_client"));
}

#[tokio::test]
async fn refresh_token_of_another_client_gets_unauthorized_client() {
    let google = google_with(MockConfig {
        clients: vec![
            ClientRegistration::new(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
            ClientRegistration::new("other.apps.googleusercontent.com", "other-secret"),
        ],
        ..MockConfig::default()
    })
    .await;
    let rt = google.issue_refresh_token("other.apps.googleusercontent.com", &scopes(&[GMAIL]));
    refresh(&google, &rt)
        .await
        .assert_exact(401, &reference_body("unauthorized_client"));
}

#[tokio::test]
async fn revoked_refresh_token_gets_invalid_grant_expired_or_revoked() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    assert!(google.revoke(&rt));
    assert!(!google.revoke(&rt), "already revoked");
    let answer = refresh(&google, &rt).await;
    answer.assert_exact(400, &reference_body("invalid_grant_revoked"));
    answer.assert_token_headers();
    assert_eq!(google.refresh_token_status(&rt), TokenStatus::Revoked);
}

#[tokio::test]
async fn unknown_refresh_token_gets_invalid_grant_bad_request() {
    let google = google().await;
    refresh(&google, "1//0not-a-token-this-mock-issued")
        .await
        .assert_exact(400, &reference_body("invalid_grant_bad_request"));
}

#[tokio::test]
async fn missing_parameters_get_invalid_request_naming_the_parameter() {
    let google = google().await;
    let url = google.token_url();
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));

    post_form(&url, &[("refresh_token", &rt)]).await.assert_exact(
        400,
        r#"{"error":"invalid_request","error_description":"Missing required parameter: grant_type"}"#,
    );
    post_form(&url, &[("grant_type", "refresh_token"), ("refresh_token", &rt)])
        .await
        .assert_exact(
            400,
            r#"{"error":"invalid_request","error_description":"Missing required parameter: client_id"}"#,
        );
    let answer = post_form(
        &url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
    .await;
    answer.assert_exact(
        400,
        &reference_body("invalid_request_missing_refresh_token"),
    );
    answer.assert_token_headers();
}

#[tokio::test]
async fn wrong_grant_type_gets_unsupported_grant_type_before_client_checks() {
    let google = google().await;
    post_form(
        &google.token_url(),
        &[("grant_type", "password"), ("client_id", "nobody")],
    )
    .await
    .assert_exact(400, &reference_body("unsupported_grant_type"));
}

#[tokio::test]
async fn scope_outside_the_grant_gets_invalid_scope_and_a_subset_narrows_the_token() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL, "openid"]));
    let base = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
    ];

    let mut form = base.to_vec();
    form.push(("scope", "https://www.googleapis.com/auth/drive"));
    post_form(&google.token_url(), &form)
        .await
        .assert_exact(400, &reference_body("invalid_scope"));

    let mut form = base.to_vec();
    form.push(("scope", GMAIL));
    let narrowed = post_form(&google.token_url(), &form).await;
    assert_eq!(narrowed.status, 200, "{}", narrowed.body);
    assert_eq!(narrowed.json()["scope"], GMAIL);
    assert!(
        narrowed.json().get("id_token").is_none(),
        "openid not requested"
    );
}

#[tokio::test]
async fn testing_app_refresh_token_dies_after_seven_days_on_the_mock_clock() {
    let google = google_with(MockConfig::testing_app()).await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    google.advance_clock(TESTING_APP_REFRESH_TOKEN_TTL - Duration::from_secs(60));
    assert_eq!(refresh(&google, &rt).await.status, 200);

    google.advance_clock(Duration::from_secs(60));
    assert_eq!(google.refresh_token_status(&rt), TokenStatus::Expired);
    refresh(&google, &rt)
        .await
        .assert_exact(400, &reference_body("invalid_grant_revoked"));
    assert_eq!(
        google.journal()[1].refresh_token_status,
        Some(TokenStatus::Expired)
    );
}

#[tokio::test]
async fn rotation_returns_a_new_refresh_token_and_the_old_one_is_superseded() {
    let google = google_with(MockConfig {
        rotate_refresh_tokens: true,
        ..MockConfig::default()
    })
    .await;
    let old = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));

    let first = refresh(&google, &old).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let json = first.json();
    let new = json["refresh_token"]
        .as_str()
        .expect("rotated refresh_token");
    assert!(new.starts_with("1//") && new != old);
    let keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
    let at = json["access_token"].as_str().expect("access_token");
    assert_eq!(
        first.body,
        format!(
            r#"{{"access_token":"{at}","expires_in":3599,"refresh_token":"{new}","scope":"{GMAIL}","token_type":"Bearer"}}"#
        )
    );

    refresh(&google, &old)
        .await
        .assert_exact(400, &reference_body("invalid_grant_revoked"));
    assert_eq!(google.refresh_token_status(&old), TokenStatus::Superseded);
    assert_eq!(google.refresh_token_status(new), TokenStatus::Live);
    let journal = google.journal();
    assert_eq!(
        journal[1].refresh_token_status,
        Some(TokenStatus::Superseded)
    );
    assert_eq!(journal[1].error.as_deref(), Some("invalid_grant"));

    assert_eq!(refresh(&google, new).await.status, 200, "the new one works");
}

#[tokio::test]
async fn id_token_is_sent_only_when_openid_was_granted() {
    let google = google().await;
    let without = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let with = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&["openid", "email", GMAIL]));

    assert!(refresh(&google, &without)
        .await
        .json()
        .get("id_token")
        .is_none());

    let answer = refresh(&google, &with).await;
    let json = answer.json();
    assert_eq!(json["scope"], format!("openid email {GMAIL}"));
    let id_token = json["id_token"].as_str().expect("id_token with openid");
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3, "header.payload.signature");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64url")).expect("json");
    assert_eq!(header["alg"], "RS256");
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64url")).expect("json");
    assert_eq!(claims["iss"], "https://accounts.google.com");
    assert_eq!(claims["aud"], DEFAULT_CLIENT_ID);
    assert_eq!(claims["sub"], google.config().subject);
    assert_eq!(claims["email"], "test-user@example.com");
    let iat = claims["iat"].as_i64().expect("iat");
    assert!((iat - google.now_unix()).abs() <= 2);
    assert!(claims["exp"].as_i64().expect("exp") > iat);
    // id_token is last, as Google sends it.
    assert!(answer.body.ends_with(&format!(
        r#""token_type":"Bearer","id_token":"{id_token}"}}"#
    )));
}

#[tokio::test]
async fn access_tokens_expire_after_the_configured_ttl_on_the_mock_clock() {
    let google = google_with(MockConfig {
        access_token_ttl: Duration::from_secs(600),
        ..MockConfig::default()
    })
    .await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let answer = refresh(&google, &rt).await;
    assert_eq!(answer.json()["expires_in"], 600);
    let at = answer.json()["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    google.advance_clock(Duration::from_secs(599));
    assert_eq!(google.access_token_status(&at), TokenStatus::Live);
    google.advance_clock(Duration::from_secs(1));
    assert_eq!(google.access_token_status(&at), TokenStatus::Expired);
}

#[tokio::test]
async fn non_post_token_request_gets_405() {
    let google = google().await;
    let answer = get(&google.token_url()).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("allow"), Some("POST"));
    assert_eq!(google.token_request_count(), 1);
}

#[tokio::test]
async fn public_client_without_a_registered_secret_refreshes_without_one() {
    let google = google_with(MockConfig {
        clients: vec![ClientRegistration::new("installed-app", "")],
        ..MockConfig::default()
    })
    .await;
    let rt = google.issue_refresh_token("installed-app", &scopes(&[GMAIL]));
    let answer = post_form(
        &google.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", "installed-app"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn every_reference_row_the_stateful_logic_can_produce_matches_the_wire_module() {
    // The error constructors in `wire` and the strings in the reference must agree: spot-check
    // a few rows against the literal text of the reference document.
    let literal = [
        (
            "invalid_grant_revoked",
            r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        ),
        (
            "invalid_client_not_found",
            r#"{"error":"invalid_client","error_description":"The OAuth client was not found."}"#,
        ),
        (
            "deleted_client",
            r#"{"error":"deleted_client","error_description":"The OAuth client was deleted."}"#,
        ),
        (
            "unsupported_grant_type",
            r#"{"error":"unsupported_grant_type","error_description":"Invalid grant_type: password"}"#,
        ),
        ("internal_failure_503", r#"{"error":"internal_failure"}"#),
    ];
    for (case, body) in literal {
        assert_eq!(reference_body(case), body, "{case}");
    }
    assert_eq!(wire::CONTENT_TYPE_JSON, "application/json; charset=utf-8");
}
