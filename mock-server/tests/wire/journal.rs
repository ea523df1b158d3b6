//! The journal: order, contents, fingerprints instead of tokens, capacity, reset.

use std::net::TcpListener;
use std::time::Duration;

use mock_server::{
    fingerprint, ClientAuth, Endpoint, MockConfig, MockGoogle, Step, TokenStatus, ACTION_GOOGLE,
    DEFAULT_CLIENT_ID,
};

use crate::helpers::*;

#[tokio::test]
async fn journal_records_requests_in_order_with_fingerprints_and_never_a_raw_token() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let answer = refresh(&google, &rt).await;
    let at = answer.json()["access_token"]
        .as_str()
        .expect("at")
        .to_string();
    get_profile(&google, &at).await;
    get(&format!("{}?access_token={at}", google.tokeninfo_url())).await;
    post_form(&google.revoke_url(), &[("token", &at)]).await;

    let journal = google.journal();
    assert_eq!(journal.len(), 4);
    assert_eq!(
        journal.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        journal.iter().map(|e| e.endpoint).collect::<Vec<_>>(),
        vec![
            Endpoint::Token,
            Endpoint::Api,
            Endpoint::TokenInfo,
            Endpoint::Revoke
        ]
    );

    let token = &journal[0];
    assert_eq!(token.method, "POST");
    assert_eq!(token.grant_type.as_deref(), Some("refresh_token"));
    assert_eq!(token.client_id.as_deref(), Some(DEFAULT_CLIENT_ID));
    assert_eq!(token.client_auth, ClientAuth::Body);
    assert_eq!(token.refresh_token_fingerprint, Some(fingerprint(&rt)));
    assert_eq!(
        token.refresh_token_fingerprint.as_deref().map(str::len),
        Some(12)
    );
    assert_eq!(token.refresh_token_status, Some(TokenStatus::Live));
    assert_eq!(token.status, Some(200));
    assert_eq!(token.action, ACTION_GOOGLE);
    assert_eq!(token.error, None);
    assert!((token.mock_time_unix - google.now_unix()).abs() <= 2);
    assert!(journal.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));

    assert_eq!(journal[1].token_fingerprint, Some(fingerprint(&at)));
    assert_eq!(journal[1].status, Some(200));
    assert_eq!(journal[3].status, Some(200));

    for entry in &journal {
        let printed = format!("{entry:?}");
        assert!(!printed.contains(&rt), "refresh token leaked: {printed}");
        assert!(!printed.contains(&at), "access token leaked: {printed}");
        assert!(!printed.contains("ya29."), "{printed}");
        assert!(!printed.contains("1//"), "{printed}");
    }
    let printed = format!("{google:?}");
    assert!(
        !printed.contains(mock_server::DEFAULT_CLIENT_SECRET),
        "{printed}"
    );
}

#[tokio::test]
async fn journal_keeps_the_latest_entries_at_capacity_while_counts_stay_exact() {
    let google = google_with(MockConfig {
        journal_capacity: 3,
        ..MockConfig::default()
    })
    .await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    for _ in 0..5 {
        assert_eq!(refresh(&google, &rt).await.status, 200);
    }
    let journal = google.journal();
    assert_eq!(
        journal.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert_eq!(google.token_request_count(), 5);
}

#[tokio::test]
async fn reset_forgets_tokens_journal_scripts_and_clock_but_keeps_config_and_port() {
    let google = google_with(MockConfig::testing_app()).await;
    let uri = google.uri();
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    refresh(&google, &rt).await;
    google.set_token_script(vec![Step::respond(500, "{}")]);
    google.advance_clock(Duration::from_secs(86_400));
    assert!(google.now_unix() > unix_now() + 86_000);

    google.reset();

    assert!(google.journal().is_empty());
    assert_eq!(google.token_request_count(), 0);
    assert_eq!(google.refresh_token_status(&rt), TokenStatus::Unknown);
    assert!((google.now_unix() - unix_now()).abs() <= 2);
    assert_eq!(google.uri(), uri);
    assert!(google.config().refresh_token_ttl.is_some());
    let fresh = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    assert_eq!(
        refresh(&google, &fresh).await.status,
        200,
        "script was cleared"
    );
    assert_eq!(google.journal()[0].seq, 1);
}

#[tokio::test]
async fn start_on_serves_on_the_listener_the_caller_bound() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("addr").port();
    let google = MockGoogle::start_on(listener, MockConfig::default())
        .await
        .expect("mock starts");
    assert_eq!(google.uri(), format!("http://127.0.0.1:{port}"));
    assert_eq!(google.token_url(), format!("http://127.0.0.1:{port}/token"));
    assert!(google.api_url().ends_with("/gmail/v1/users/me/profile"));
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    assert_eq!(refresh(&google, &rt).await.status, 200);
}

#[tokio::test]
async fn duplicate_client_registrations_refuse_to_start() {
    let config = MockConfig {
        clients: vec![
            mock_server::ClientRegistration::new("a", "1"),
            mock_server::ClientRegistration::new("a", "2"),
        ],
        ..MockConfig::default()
    };
    let err = MockGoogle::start_with(config)
        .await
        .expect_err("invalid config");
    assert!(
        matches!(err, mock_server::MockError::InvalidConfig(_)),
        "{err}"
    );
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

#[tokio::test]
async fn a_rotation_journals_the_refresh_token_it_issued_and_a_plain_refresh_none() {
    let google = google_with(MockConfig {
        rotate_refresh_tokens: true,
        ..MockConfig::default()
    })
    .await;
    let first = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let answer = refresh(&google, &first).await;
    let second = answer.json()["refresh_token"]
        .as_str()
        .expect("a rotated refresh_token")
        .to_owned();
    refresh(&google, &second).await;
    google.set_rotate_refresh_tokens(false);
    let third = google.journal()[1]
        .issued_refresh_token_fingerprint
        .clone()
        .expect("the second rotation's token");
    let plain = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    refresh(&google, &plain).await;

    let journal = google.journal();
    // Each refresh presents the token the one before issued: the journal links them.
    assert_eq!(
        journal[0].issued_refresh_token_fingerprint,
        Some(fingerprint(&second))
    );
    assert_eq!(
        journal[1].refresh_token_fingerprint,
        journal[0].issued_refresh_token_fingerprint
    );
    assert_ne!(Some(third), journal[1].refresh_token_fingerprint);
    // Without rotation Google's answer carries no refresh token, and the journal none.
    assert_eq!(journal[2].status, Some(200));
    assert_eq!(journal[2].issued_refresh_token_fingerprint, None);
}
