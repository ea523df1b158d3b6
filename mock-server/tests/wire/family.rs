//! Refresh-token families: a rotation grace window, and reuse of an old token revoking the
//! whole family, over the wire.

use crate::helpers::*;
use mock_server::{MockConfig, TokenStatus, DEFAULT_CLIENT_ID};
use std::time::Duration;

const GMAIL: &str = "https://www.googleapis.com/auth/gmail.readonly";

fn rotating(grace: Duration, reuse_revokes_family: bool) -> MockConfig {
    MockConfig {
        rotate_refresh_tokens: true,
        rotation_grace: grace,
        reuse_revokes_family,
        ..MockConfig::default()
    }
}

fn new_refresh_token(answer: &Answer) -> String {
    answer.json()["refresh_token"]
        .as_str()
        .expect("a rotated refresh_token")
        .to_owned()
}

#[tokio::test]
async fn within_the_grace_window_an_old_refresh_token_still_refreshes_and_rotates_again() {
    let google = google_with(rotating(Duration::from_secs(60), true)).await;
    let old = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));

    let first = refresh(&google, &old).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let racing = refresh(&google, &old).await;
    assert_eq!(
        racing.status, 200,
        "a racing worker inside the window: {}",
        racing.body
    );

    let (a, b) = (new_refresh_token(&first), new_refresh_token(&racing));
    assert_ne!(a, b);
    assert_eq!(google.refresh_token_status(&old), TokenStatus::Superseded);
    assert_eq!(google.refresh_token_status(&a), TokenStatus::Live);
    assert_eq!(google.refresh_token_status(&b), TokenStatus::Live);
    let journal = google.journal();
    assert_eq!(
        journal[1].refresh_token_status,
        Some(TokenStatus::Superseded)
    );
    assert_eq!(journal[1].status, Some(200));
}

#[tokio::test]
async fn reuse_after_the_window_revokes_the_whole_family_the_newest_token_included() {
    let google = google_with(rotating(Duration::ZERO, true)).await;
    let old = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let first = refresh(&google, &old).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let newest = new_refresh_token(&first);
    let access = first.json()["access_token"]
        .as_str()
        .expect("access")
        .to_owned();

    refresh(&google, &old)
        .await
        .assert_exact(400, &crate::token::reference_body("invalid_grant_revoked"));

    assert_eq!(google.refresh_token_status(&newest), TokenStatus::Revoked);
    assert_eq!(google.access_token_status(&access), TokenStatus::Revoked);
    assert_eq!(get_profile(&google, &access).await.status, 401);
    assert_eq!(
        refresh(&google, &newest).await.status,
        400,
        "the family is gone"
    );
}

#[tokio::test]
async fn without_reuse_detection_an_old_token_fails_alone_and_the_family_lives() {
    let google = google_with(rotating(Duration::ZERO, false)).await;
    let old = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let newest = new_refresh_token(&refresh(&google, &old).await);

    assert_eq!(refresh(&google, &old).await.status, 400);
    assert_eq!(google.refresh_token_status(&newest), TokenStatus::Live);
    assert_eq!(refresh(&google, &newest).await.status, 200);
}

#[tokio::test]
async fn a_token_rotated_by_another_client_is_superseded_and_its_grace_starts_then() {
    let google = google().await;
    google.set_rotate_refresh_tokens(true);
    google.set_reuse_revokes_family(true);
    let stored = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let elsewhere = google.rotate_refresh_token(&stored).expect("live");
    assert_eq!(
        google.refresh_token_status(&stored),
        TokenStatus::Superseded
    );
    assert!(google.rotate_refresh_token(&stored).is_none(), "superseded");

    // No grace: the stored (superseded) token is reuse, and takes the other client's with it.
    assert_eq!(refresh(&google, &stored).await.status, 400);
    assert_eq!(
        google.refresh_token_status(&elsewhere),
        TokenStatus::Revoked
    );

    // With a grace window, the same lost rotation is survivable.
    google.reset();
    google.set_rotate_refresh_tokens(true);
    google.set_reuse_revokes_family(true);
    google.set_rotation_grace(Duration::from_secs(60));
    let stored = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let elsewhere = google.rotate_refresh_token(&stored).expect("live");
    let answer = refresh(&google, &stored).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(google.refresh_token_status(&elsewhere), TokenStatus::Live);
    google.advance_clock(Duration::from_secs(61));
    assert_eq!(
        refresh(&google, &stored).await.status,
        400,
        "the window is over"
    );
    assert_eq!(
        google.refresh_token_status(&elsewhere),
        TokenStatus::Revoked
    );
}

#[tokio::test]
async fn another_deployments_access_token_shares_the_grant_and_dies_with_it() {
    let google = google().await;
    let stored = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let theirs = google.issue_access_token_if_usable(&stored).expect("live");
    assert_eq!(get_profile(&google, &theirs).await.status, 200);
    assert!(google
        .journal()
        .iter()
        .all(|e| e.endpoint != mock_server::Endpoint::Token));

    assert!(google.revoke(&stored));
    assert_eq!(google.access_token_status(&theirs), TokenStatus::Revoked);
    assert!(google.issue_access_token_if_usable(&stored).is_none());
}
