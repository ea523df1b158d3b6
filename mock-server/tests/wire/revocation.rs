//! Revocation over the wire: a refresh token's revocation kills its access tokens (the other
//! way round is in `endpoints.rs`), and a delayed one lets tokens work until it takes effect,
//! then kills those issued meanwhile too.

use std::time::Duration;

use mock_server::{Step, TokenStatus, DEFAULT_CLIENT_ID};

use crate::helpers::*;

const REVOKED: &str =
    r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#;

#[tokio::test]
async fn revoking_a_refresh_token_kills_the_access_token_minted_with_it() {
    let google = google().await;
    let refresh_token = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let access_token = google
        .issue_access_token_for(&refresh_token, Duration::from_secs(3600))
        .expect("known refresh token");
    assert_eq!(get_profile(&google, &access_token).await.status, 200);
    assert!(google.revoke(&refresh_token));
    assert_eq!(get_profile(&google, &access_token).await.status, 401);
    assert_eq!(
        google.access_token_status(&access_token),
        TokenStatus::Revoked
    );
    assert!(google
        .issue_access_token_for("1//never-issued", Duration::from_secs(60))
        .is_none());
}

#[tokio::test]
async fn a_delayed_revocation_lets_refreshes_work_until_it_takes_effect_then_kills_their_tokens() {
    let google = google().await;
    let refresh_token = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    assert!(google.revoke_after(&refresh_token, Duration::from_secs(300)));
    let refreshed = refresh(&google, &refresh_token).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let access_token = refreshed.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    assert_eq!(get_profile(&google, &access_token).await.status, 200);
    // A script step moves the clock past the delay as the next API call arrives.
    google.set_api_script(vec![
        Step::google().with_clock_advance(Duration::from_secs(301))
    ]);
    assert_eq!(get_profile(&google, &access_token).await.status, 401);
    refresh(&google, &refresh_token)
        .await
        .assert_exact(400, REVOKED);
    assert!(
        !google.revoke_after(&refresh_token, Duration::from_secs(1)),
        "nothing live is left to revoke"
    );
}
