//! Many clients at once: the mock must stay exact under hundreds of concurrent requests.

use std::sync::Arc;

use mock_server::{MockConfig, TokenStatus, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_refreshes_of_one_token_all_succeed() {
    let google = Arc::new(google().await);
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let client = http();

    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (client, url, rt) = (client.clone(), google.token_url(), rt.clone());
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                    ("client_id", DEFAULT_CLIENT_ID),
                    ("client_secret", DEFAULT_CLIENT_SECRET),
                ])
                .send()
                .await
                .expect("request completes");
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.expect("json body");
            (status, body["access_token"].as_str().map(str::to_string))
        }));
    }
    let mut access_tokens = std::collections::HashSet::new();
    for task in tasks {
        let (status, at) = task.await.expect("task completes");
        assert_eq!(status, 200);
        access_tokens.insert(at.expect("access_token"));
    }

    assert_eq!(
        access_tokens.len(),
        200,
        "every refresh got its own access token"
    );
    assert_eq!(google.token_request_count(), 200);
    assert_eq!(google.journal().len(), 200);
    let mut seqs: Vec<u64> = google.journal().iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    assert_eq!(google.refresh_token_status(&rt), TokenStatus::Live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_with_rotation_let_exactly_one_win() {
    let google = Arc::new(
        google_with(MockConfig {
            rotate_refresh_tokens: true,
            ..MockConfig::default()
        })
        .await,
    );
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));

    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (url, rt) = (google.token_url(), rt.clone());
        tasks.push(tokio::spawn(async move {
            post_form(
                &url,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", DEFAULT_CLIENT_ID),
                    ("client_secret", DEFAULT_CLIENT_SECRET),
                ],
            )
            .await
            .status
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task completes") {
            200 => ok += 1,
            400 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(
        ok, 1,
        "the first refresh rotates, the rest present a superseded token"
    );
    assert_eq!(google.token_request_count(), 50);
}
