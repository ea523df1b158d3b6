//! The mock's own HTTP front end as another project's tests meet it: `MockGoogle::start()` with
//! no configuration, limits set through the builder, a server that answers while the test
//! blocks, stops when dropped, and a clock that cannot be pushed past its limit.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mock_server::{
    Limits, MockError, MockGoogle, TokenStatus, DEFAULT_CLIENT_ID, MAX_CLOCK_OFFSET,
};

use crate::helpers::*;

/// One raw HTTP/1.1 exchange on a fresh connection: everything the server sent until it closed.
fn raw(address: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn address(google: &MockGoogle) -> String {
    google.uri().trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn start_without_arguments_serves_the_default_client() {
    let google = MockGoogle::start().await.expect("mock starts");
    assert!(
        google.uri().starts_with("http://127.0.0.1:"),
        "{}",
        google.uri()
    );
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let answer = refresh(&google, &rt).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.assert_token_headers();
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_before_the_mock_sees_it() {
    let google = MockGoogle::builder()
        .limits(Limits {
            max_body_bytes: 1024,
            ..Limits::default()
        })
        .start()
        .await
        .expect("mock starts");
    let padding = "x".repeat(2048);
    let answer = post_form(&google.token_url(), &[("grant_type", &padding)]).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(answer.json()["error"], "request_too_large");
    assert!(
        answer.body.contains("larger than 1024 bytes"),
        "{}",
        answer.body
    );
    assert_eq!(google.token_request_count(), 0, "refused before the mock");
    let small = post_form(&google.token_url(), &[("grant_type", "refresh_token")]).await;
    assert_eq!(small.status, 400, "{}", small.body);
    assert_eq!(google.token_request_count(), 1);
}

#[test]
fn the_started_mock_answers_while_the_test_thread_blocks() {
    // A single-threaded runtime that is never polled while the request below is made: the
    // mock must be serving from its own thread, as wiremock's server does.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let google = runtime.block_on(MockGoogle::start()).expect("mock starts");
    let answer = raw(
        &address(&google),
        "GET /tokeninfo?access_token=ya29.unknown HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(
        answer.ends_with(r#"{"error_description":"Invalid Value"}"#),
        "{answer}"
    );
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let google = MockGoogle::start().await.expect("mock starts");
    let address = address(&google);
    assert!(TcpStream::connect(&address).is_ok(), "serving");
    drop(google);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&address).is_ok() {
        assert!(Instant::now() < deadline, "still accepting on {address}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_clock_cannot_be_pushed_past_its_limit_and_keeps_answering() {
    let google = MockGoogle::start().await.expect("mock starts");
    let rt = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let err = google
        .try_advance_clock(Duration::from_secs(u64::MAX))
        .expect_err("beyond the limit");
    assert!(matches!(err, MockError::OutOfRange(_)), "{err}");
    assert!(err.to_string().contains("at most 3155760000 s"), "{err}");
    let before = google.now_unix();
    assert!(
        google.try_advance_clock(Duration::from_secs(60)).is_ok(),
        "a small step is fine"
    );
    assert!(google.now_unix() >= before + 60);
    // The infallible form stops at the limit instead of breaking every later answer.
    google.advance_clock(Duration::MAX);
    let year_2100 = 4_102_444_800;
    assert!(google.now_unix() > year_2100);
    // A hundred years on, the first token has gone unused for six months (Google's rule), and
    // the mock still answers: a token issued now refreshes.
    assert_eq!(google.refresh_token_status(&rt), TokenStatus::Expired);
    let fresh = google.issue_refresh_token(DEFAULT_CLIENT_ID, &scopes(&[GMAIL]));
    let answer = refresh(&google, &fresh).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(google.refresh_token_status(&fresh), TokenStatus::Live);
    assert!(
        google.try_advance_clock(Duration::from_secs(1)).is_err(),
        "already {} s ahead",
        MAX_CLOCK_OFFSET.as_secs()
    );
}
