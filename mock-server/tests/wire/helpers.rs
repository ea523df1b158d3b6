//! Shared test plumbing: a fresh mock per test, a plain loopback HTTP client, request helpers.

use std::time::Duration;

use mock_server::{MockConfig, MockGoogle, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};

pub const GMAIL: &str = "https://www.googleapis.com/auth/gmail.readonly";

pub fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A client that never uses a proxy (loopback only) and never hangs a test.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("reqwest client builds")
}

pub async fn google() -> MockGoogle {
    google_with(MockConfig::default()).await
}

pub async fn google_with(config: MockConfig) -> MockGoogle {
    MockGoogle::start_with(config).await.expect("mock starts")
}

/// A finished exchange: status, headers and body text.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("body is JSON")
    }

    /// Asserts the four headers of every token-endpoint JSON answer.
    pub fn assert_token_headers(&self) {
        assert_eq!(
            self.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(
            self.header("cache-control"),
            Some("no-cache, no-store, max-age=0, must-revalidate")
        );
        assert_eq!(self.header("pragma"), Some("no-cache"));
        assert_eq!(
            self.header("expires"),
            Some("Mon, 01 Jan 1990 00:00:00 GMT")
        );
    }

    /// Asserts an exact status and body.
    pub fn assert_exact(&self, status: u16, body: &str) {
        assert_eq!(
            (self.status, self.body.as_str()),
            (status, body),
            "unexpected answer"
        );
    }
}

pub async fn read(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body reads");
    Answer {
        status,
        headers,
        body,
    }
}

/// POSTs a form to `url`.
pub async fn post_form(url: &str, form: &[(&str, &str)]) -> Answer {
    read(
        http()
            .post(url)
            .form(form)
            .send()
            .await
            .expect("request completes"),
    )
    .await
}

/// A refresh with client credentials in the body (default client).
pub async fn refresh(google: &MockGoogle, refresh_token: &str) -> Answer {
    post_form(
        &google.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
    .await
}

pub async fn get_profile(google: &MockGoogle, access_token: &str) -> Answer {
    read(
        http()
            .get(google.api_url())
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request completes"),
    )
    .await
}

pub async fn get(url: &str) -> Answer {
    read(http().get(url).send().await.expect("request completes")).await
}
