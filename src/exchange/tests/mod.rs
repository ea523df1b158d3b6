//! The exchange against a wiremock token endpoint on loopback: every error Google's token
//! endpoint is known to return, successes, retries and their waits, timeouts, dropped
//! connections, malformed successes, redirects, client authentication, and proof that no planted
//! secret reaches a message, a `Debug` string or a log line.
//!
//! Each test has its own mock server on port 0; backoffs are a few milliseconds.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::prelude::*;
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::secret::{AccessToken, ClientSecret, RefreshToken};

mod config;
mod errors;
mod malformed;
mod no_response;
mod requests;
mod retries;
mod secrets;
mod successes;

const CLIENT_ID: &str = "123-planted.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "GOCSPX-planted-client-secret-9f3a";
const REFRESH_TOKEN: &str = "1//planted-refresh-token-0c7e51";
const ACCESS_TOKEN: &str = "ya29.planted-access-token-a1b2c3";
const ID_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.planted-id-token.c2ln";
const ROTATED_REFRESH_TOKEN: &str = "1//planted-rotated-refresh-token-77d";
/// Every secret a test plants; none may ever be printed.
const PLANTED: [&str; 5] = [
    CLIENT_SECRET,
    REFRESH_TOKEN,
    ACCESS_TOKEN,
    ID_TOKEN,
    ROTATED_REFRESH_TOKEN,
];

const GMAIL_SCOPE: &str = "https://www.googleapis.com/auth/gmail.readonly";
const JSON: &str = "application/json; charset=utf-8";
const HTML: &str = "text/html; charset=UTF-8";

const SORRY_PAGE: &str = "<html><head><meta http-equiv=\"content-type\" content=\"text/html; \
charset=utf-8\"/><title>Sorry...</title></head><body><div><h1>Sorry...</h1><p>We're sorry... \
but your computer or network may be sending automated queries. To protect our users, we can't \
process your request right now.</p></div></body></html>";
const BAD_GATEWAY_PAGE: &str = "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error \
502 (Server Error)!!1</title><p><b>502.</b> <ins>That's an error.</ins><p>The server \
encountered a temporary error and could not complete your request.<p>Please try again in 30 \
seconds. <ins>That's all we know.</ins></html>";

/// The caller's secrets, owned by the test so a [`RefreshRequest`] can borrow them.
struct Secrets {
    client_secret: ClientSecret,
    refresh_token: RefreshToken,
}

impl Secrets {
    fn new() -> Self {
        Self {
            client_secret: ClientSecret::from(CLIENT_SECRET),
            refresh_token: RefreshToken::from(REFRESH_TOKEN),
        }
    }

    fn request(&self) -> RefreshRequest<'_> {
        RefreshRequest {
            client_id: CLIENT_ID,
            client_secret: Some(&self.client_secret),
            refresh_token: &self.refresh_token,
            scopes: &[],
        }
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(2),
        multiplier: 2.0,
        jitter: 0.1,
        max_retry_after: Duration::from_millis(50),
    }
}

fn config_for(server: &MockServer) -> ExchangeConfig {
    ExchangeConfig {
        token_url: Url::parse(&format!("{}/token", server.uri())).expect("mock URL parses"),
        request_timeout: Duration::from_secs(5),
        retry: fast_retry(),
        auth_in_body: false,
    }
}

async fn refresh_with(config: ExchangeConfig) -> Exchange {
    let http = build_http_client(config.request_timeout).expect("HTTP client builds");
    let secrets = Secrets::new();
    TokenExchanger::new(http, config)
        .refresh(&secrets.request())
        .await
}

async fn refresh_against(server: &MockServer) -> Exchange {
    refresh_with(config_for(server)).await
}

fn json(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), JSON)
}

fn google_success(body: &str) -> ResponseTemplate {
    json(200, body)
        .insert_header(
            "cache-control",
            "no-cache, no-store, max-age=0, must-revalidate",
        )
        .insert_header("pragma", "no-cache")
        .insert_header("expires", "Mon, 01 Jan 1990 00:00:00 GMT")
}

fn success_body() -> String {
    format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"scope":"{GMAIL_SCOPE}","token_type":"Bearer"}}"#
    )
}

/// Mounts `response` for every POST to `/token`, expecting exactly `times` requests.
async fn mount(server: &MockServer, response: ResponseTemplate, times: impl Into<wiremock::Times>) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

/// Mounts `response` for the first `times` POSTs to `/token` only, ahead of other mocks.
async fn mount_first(server: &MockServer, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(response)
        .up_to_n_times(times)
        .expect(times)
        .with_priority(1)
        .mount(server)
        .await;
}

fn grant(exchange: &Exchange) -> &TokenGrant {
    match &exchange.outcome {
        Outcome::Refreshed(grant) => grant,
        other => panic!("expected refreshed, got {other:?}"),
    }
}

fn protocol_detail(exchange: &Exchange) -> &str {
    match &exchange.outcome {
        Outcome::ProtocolError { detail } => detail,
        other => panic!("expected protocol_error, got {other:?}"),
    }
}

fn assert_prints_no_secret(exchange: &Exchange) {
    let printed = [
        format!("{exchange:?}"),
        format!("{exchange:#?}"),
        exchange.outcome.to_string(),
    ];
    for text in &printed {
        for secret in PLANTED {
            assert!(!text.contains(secret), "{secret:?} leaked into {text:?}");
        }
    }
}
