//! The retry loop around one `refresh_token` grant: build the `oauth2` request, send it through
//! the capturing HTTP function, classify, and try again while the failure is transient.

use std::cell::RefCell;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use oauth2::{AuthType, ClientId, HttpRequest, Scope, TokenUrl};
use secrecy::SecretString;

use crate::secret::{ClientSecret, RefreshToken};

use super::classify::{classify, Scrubber, Verdict};
use super::retry::next_wait;
use super::transport::{complete, send_capturing, TransportError, MAX_BODY_BYTES};
use super::wire::GoogleClient;
use super::{Attempt, Exchange, ExchangeConfig, Outcome};

/// What one refresh needs from the caller. Borrowed, so secrets stay where the caller keeps them.
pub struct RefreshRequest<'a> {
    /// The OAuth client id (not a secret).
    pub client_id: &'a str,
    /// The OAuth client secret; `None` for clients that have none.
    pub client_secret: Option<&'a ClientSecret>,
    /// The refresh token to exchange.
    pub refresh_token: &'a RefreshToken,
    /// Scopes to ask for; usually empty, in which case no `scope` is sent and Google grants the
    /// scopes of the original consent.
    pub scopes: &'a [String],
}

impl fmt::Debug for RefreshRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.map(|_| "[redacted]"))
            .field("refresh_token", &"[redacted]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Exchanges refresh tokens at one token endpoint with one HTTP client.
///
/// Cheap to clone: the HTTP client is a handle to a shared connection pool.
#[derive(Clone, Debug)]
pub struct TokenExchanger {
    http: reqwest::Client,
    config: ExchangeConfig,
}

impl TokenExchanger {
    /// An exchanger over `http` — build it with
    /// [`build_http_client`](super::build_http_client) so that redirects are off.
    #[must_use]
    pub fn new(http: reqwest::Client, config: ExchangeConfig) -> Self {
        Self { http, config }
    }

    /// The settings this exchanger uses.
    #[must_use]
    pub fn config(&self) -> &ExchangeConfig {
        &self.config
    }

    /// Exchanges `req.refresh_token` for a new access token.
    ///
    /// Transient failures ([`Outcome::RetryLater`]) are retried up to
    /// [`RetryPolicy::max_attempts`](super::RetryPolicy::max_attempts) tries in all, waiting the
    /// backoff or the server's `Retry-After` (capped) between tries; every other outcome ends
    /// the exchange at once. Never fails: every result is an [`Outcome`].
    ///
    /// # Security
    ///
    /// Neither the refresh token nor the client secret appear in any span, log line or message
    /// this produces.
    #[tracing::instrument(
        name = "token_exchange",
        skip_all,
        fields(token_url = %self.config.token_url, client_id = %req.client_id)
    )]
    pub async fn refresh(&self, req: &RefreshRequest<'_>) -> Exchange {
        let client = oauth_client(&self.config, req);
        let refresh_token = oauth2::RefreshToken::new(req.refresh_token.expose_secret().to_owned());
        let scopes: Vec<Scope> = req.scopes.iter().map(|s| Scope::new(s.clone())).collect();
        let scrub = scrubber_for(req);

        let max_attempts = self.config.retry.attempts();
        let mut attempts = Vec::new();
        let mut wait = Duration::ZERO;
        loop {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let started = Instant::now();
            let verdict = self
                .try_once(&client, &refresh_token, &scopes, &scrub)
                .await;
            let attempt = Attempt {
                status: verdict.status,
                class: verdict.class,
                waited_before: wait,
                duration: started.elapsed(),
            };
            tracing::debug!(
                attempt = attempts.len() + 1,
                status = ?attempt.status,
                class = attempt.class,
                duration_ms = u64::try_from(attempt.duration.as_millis()).unwrap_or(u64::MAX),
                "token endpoint answered"
            );
            attempts.push(attempt);

            let tries = u32::try_from(attempts.len()).unwrap_or(u32::MAX);
            let transient = matches!(verdict.outcome, Outcome::RetryLater { .. });
            if !transient || tries >= max_attempts {
                tracing::info!(
                    outcome = verdict.outcome.code(),
                    attempts = attempts.len(),
                    "token exchange finished"
                );
                return Exchange {
                    outcome: verdict.outcome,
                    attempts,
                };
            }
            wait = next_wait(&self.config.retry, tries, verdict.retry_after);
            tracing::info!(
                outcome = %verdict.outcome,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "transient failure at the token endpoint; retrying"
            );
        }
    }

    /// One HTTP try through `oauth2`, classified.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn try_once(
        &self,
        client: &GoogleClient,
        refresh_token: &oauth2::RefreshToken,
        scopes: &[Scope],
        scrub: &Scrubber,
    ) -> Verdict {
        let captured = Mutex::new(None);
        let send = CapturingClient {
            http: &self.http,
            timeout: self.config.request_timeout,
            cell: &captured,
        };

        let result = client
            .exchange_refresh_token(refresh_token)
            .add_scopes(scopes.iter().cloned())
            .request_async(&send)
            .await;
        let captured = captured
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        classify(result, captured, scrub)
    }
}

/// Classifies one raw answer of the token endpoint exactly as a try of
/// [`TokenExchanger::refresh`] that received it would: `oauth2` parses it, then the same rules
/// decide. `req` names the secrets that were sent, which are scrubbed from any text the server
/// chose. Pure (no network; the clock only to read a `Retry-After` date), so it can be fuzzed.
#[must_use]
pub fn classify_response(
    req: &RefreshRequest<'_>,
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
) -> Outcome {
    let client = oauth_client(&ExchangeConfig::default(), req);
    let refresh_token = oauth2::RefreshToken::new(req.refresh_token.expose_secret().to_owned());
    let (result, captured) = if body.len() > MAX_BODY_BYTES {
        // The transport stops reading here and keeps the status and headers only.
        let (_, captured) = complete(status, headers, Vec::new());
        let result = Err(oauth2::RequestTokenError::Request(
            TransportError::TooLarge(MAX_BODY_BYTES),
        ));
        (result, captured)
    } else {
        let (response, captured) = complete(status, headers, body);
        let response = RefCell::new(Some(response));
        let send = |_: HttpRequest| {
            response
                .borrow_mut()
                .take()
                .ok_or_else(|| TransportError::Build("the token request was sent twice".to_owned()))
        };
        let result = client.exchange_refresh_token(&refresh_token).request(&send);
        (result, captured)
    };
    classify(result, Some(captured), &scrubber_for(req)).outcome
}

/// The secrets a refresh sends, to be scrubbed from what the server says.
fn scrubber_for(req: &RefreshRequest<'_>) -> Scrubber {
    let sent = std::iter::once(req.refresh_token.expose_secret())
        .chain(req.client_secret.map(ClientSecret::expose_secret));
    Scrubber::new(sent.map(SecretString::from))
}

/// The `oauth2` client for one refresh: the token URL, the client and how it authenticates.
fn oauth_client(config: &ExchangeConfig, req: &RefreshRequest<'_>) -> GoogleClient {
    let auth_type = if config.auth_in_body {
        AuthType::RequestBody
    } else {
        AuthType::BasicAuth
    };
    let client = oauth2::Client::new(ClientId::new(req.client_id.to_owned()))
        .set_token_uri(TokenUrl::from_url(config.token_url.clone()))
        .set_auth_type(auth_type);
    match req.client_secret {
        Some(secret) => {
            client.set_client_secret(oauth2::ClientSecret::new(secret.expose_secret().to_owned()))
        }
        None => client,
    }
}

/// The HTTP client handed to `oauth2`: sends through the injected reqwest client and keeps a copy
/// of the raw response. A named type with a boxed `Send` future (rather than a closure) keeps the
/// whole exchange future `Send`, so it can run on spawned tasks.
struct CapturingClient<'a> {
    http: &'a reqwest::Client,
    timeout: Duration,
    cell: &'a Mutex<Option<super::transport::Captured>>,
}

impl<'c> oauth2::AsyncHttpClient<'c> for CapturingClient<'_> {
    type Error = super::transport::TransportError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<oauth2::HttpResponse, Self::Error>> + Send + 'c,
        >,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(send_capturing(self.http, self.timeout, request, self.cell))
    }
}
