//! Scripts: canned answers, dropped connections, delays and revoke-then-Google, then Google again.

use std::time::{Duration, Instant};

use mock_server::wire::reference_errors;
use mock_server::{
    Action, Step, TokenStatus, ACTION_DROPPED, ACTION_GOOGLE, ACTION_SCRIPTED, DEFAULT_CLIENT_ID,
};

use crate::helpers::*;

#[tokio::test]
async fn canned_429_with_retry_after_is_sent_verbatim_then_google_resumes() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let body = r#"{"error":"rate_limit_exceeded","error_description":"Slow down"}"#;
    google.set_token_script(vec![
        Step::respond(429, body).with_header("Retry-After", "7")
    ]);

    let first = refresh(&google, &rt).await;
    first.assert_exact(429, body);
    assert_eq!(first.header("retry-after"), Some("7"));
    assert_eq!(
        first.header("content-type"),
        Some("application/json; charset=utf-8")
    );

    let second = refresh(&google, &rt).await;
    assert_eq!(second.status, 200, "script ran out: Google again");

    let journal = google.journal();
    assert_eq!(journal[0].action, ACTION_SCRIPTED);
    assert_eq!(journal[0].status, Some(429));
    assert_eq!(journal[0].error.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(journal[1].action, ACTION_GOOGLE);
}

#[tokio::test]
async fn respond_action_sends_exactly_the_listed_headers_and_bytes() {
    let google = google().await;
    google.set_token_script(vec![Action::Respond {
        status: 502,
        headers: vec![("x-custom".to_string(), "1".to_string())],
        body: "upstream fell over".to_string(),
    }
    .into()]);
    let answer = post_form(&google.token_url(), &[("grant_type", "refresh_token")]).await;
    answer.assert_exact(502, "upstream fell over");
    assert_eq!(answer.header("x-custom"), Some("1"));
    assert_eq!(
        answer.header("content-type"),
        None,
        "none listed, none sent"
    );
}

#[tokio::test]
async fn drop_step_closes_the_connection_without_any_response() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    google.set_token_script(vec![Step::drop()]);

    let result = http()
        .post(google.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", mock_server::DEFAULT_CLIENT_SECRET),
        ])
        .send()
        .await;
    let err = result.expect_err("no response on a dropped connection");
    assert!(err.status().is_none(), "{err:?}");
    assert!(!err.is_timeout(), "closed at once, not timed out: {err:?}");

    assert_eq!(
        refresh(&google, &rt).await.status,
        200,
        "next request is answered"
    );
    let journal = google.journal();
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[0].action, ACTION_DROPPED);
    assert_eq!(journal[0].status, None);
    assert_eq!(journal[0].refresh_token_status, Some(TokenStatus::Live));
    assert_eq!(google.token_request_count(), 2);
}

#[tokio::test]
async fn delayed_step_holds_the_answer_back() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    google.set_token_script(vec![Step::google().with_delay(Duration::from_millis(400))]);

    let started = Instant::now();
    let answer = refresh(&google, &rt).await;
    assert_eq!(answer.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    assert_eq!(refresh(&google, &rt).await.status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "only the scripted step waits"
    );
}

#[tokio::test]
async fn a_delayed_answer_does_not_block_other_requests() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    google.set_token_script(vec![Step::google().with_delay(Duration::from_secs(2))]);

    let slow = {
        let url = google.token_url();
        let rt = rt.clone();
        tokio::spawn(async move {
            post_form(
                &url,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", DEFAULT_CLIENT_ID),
                    ("client_secret", mock_server::DEFAULT_CLIENT_SECRET),
                ],
            )
            .await
        })
    };
    // Wait until the slow request has been handled (journaled) before sending the fast one.
    while google.token_request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    assert_eq!(refresh(&google, &rt).await.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(slow.await.expect("task").status, 200);
}

#[tokio::test]
async fn revoke_then_google_answers_invalid_grant_and_kills_the_token() {
    let google = google().await;
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    google.set_token_script(vec![Step::revoke_then_google()]);

    refresh(&google, &rt).await.assert_exact(
        400,
        r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
    );
    assert_eq!(google.refresh_token_status(&rt), TokenStatus::Revoked);
    let entry = &google.journal()[0];
    assert_eq!(
        entry.refresh_token_status,
        Some(TokenStatus::Live),
        "status before handling"
    );
    assert_eq!(entry.action, ACTION_SCRIPTED);
    assert_eq!(entry.error.as_deref(), Some("invalid_grant"));
}

#[tokio::test]
async fn every_reference_error_replays_byte_for_byte_as_a_script_step() {
    let google = google().await;
    let rows = reference_errors();
    google.set_token_script(rows.iter().map(|row| row.to_step()).collect());
    for row in &rows {
        let answer = post_form(&google.token_url(), &[("grant_type", "refresh_token")]).await;
        answer.assert_exact(row.status, &row.body);
        assert_eq!(
            answer.header("content-type"),
            Some(row.content_type()),
            "{}",
            row.case
        );
    }
}

#[tokio::test]
async fn unusable_scripted_status_becomes_a_500_instead_of_a_crash() {
    let google = google().await;
    google.set_token_script(vec![Step::respond(42, "nope")]);
    let answer = post_form(&google.token_url(), &[]).await;
    assert_eq!(answer.status, 500);
    assert_eq!(google.journal()[0].error.as_deref(), Some("invalid_script"));
    assert_eq!(
        post_form(&google.token_url(), &[]).await.status,
        400,
        "server still up"
    );
}
