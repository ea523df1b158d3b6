//! The one way an [`Engine`] is made: every mode that refreshes (real, force-expire, mock,
//! mock-all, worker-sim) builds its engine here, from the store, the keys, the token endpoint
//! and what differs between them (timeouts, retries, margin, leases, the mode's name).

use super::{Engine, EngineConfig, EngineParts, Native, RefreshStore};
use crate::crypto::Keyring;
use crate::exchange::{
    build_http_client, ExchangeConfig, ExchangeError, RetryPolicy, TokenExchanger,
};
use crate::google_api::ApiEndpoints;
use crate::secret::ClientSecret;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Builds an [`Engine`]; start from [`EngineBuilder::new`], change what differs, [`build`](Self::build).
#[must_use]
pub struct EngineBuilder<S = Native> {
    store: S,
    exchange: ExchangeConfig,
    api: ApiEndpoints,
    http: Option<reqwest::Client>,
    default_client_id: Option<String>,
    default_client_secret: Option<ClientSecret>,
    config: EngineConfig,
}

impl EngineBuilder<Native> {
    /// An engine on oauthtest's `store` with `keyring`, refreshing at `exchange`'s token
    /// endpoint and proving tokens at `api`; Google-like retries and the default
    /// [`EngineConfig`] until told otherwise.
    pub fn new(
        store: Arc<Store>,
        keyring: Arc<Keyring>,
        exchange: ExchangeConfig,
        api: ApiEndpoints,
    ) -> Self {
        Self::on(Native { store, keyring }, exchange, api)
    }
}

impl<S: RefreshStore> EngineBuilder<S> {
    /// [`EngineBuilder::new`] on any store the engine works over (the application's:
    /// [`super::AppRows`]).
    pub fn on(store: S, exchange: ExchangeConfig, api: ApiEndpoints) -> Self {
        Self {
            store,
            exchange,
            api,
            http: None,
            default_client_id: None,
            default_client_secret: None,
            config: EngineConfig::default(),
        }
    }

    /// One request's time limit at the token endpoint and the API.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.exchange.request_timeout = timeout;
        self
    }

    /// Which failures are retried, how often and how far apart.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.exchange.retry = retry;
        self
    }

    /// Share an HTTP client built elsewhere (with redirects off, as [`build_http_client`]
    /// makes them) instead of building one.
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The OAuth client for credentials that do not carry their own.
    pub fn default_client(mut self, id: Option<String>, secret: Option<ClientSecret>) -> Self {
        self.default_client_id = id;
        self.default_client_secret = secret;
        self
    }

    /// Margin, leases, the mode's name in history lines, coordination.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// The engine.
    ///
    /// # Errors
    /// [`ExchangeError`] when the HTTP client cannot be built (the TLS backend fails to start).
    pub fn build(self) -> Result<Engine<S>, ExchangeError> {
        let http = match self.http {
            Some(http) => http,
            None => build_http_client(self.exchange.request_timeout)?,
        };
        Ok(Engine::new(EngineParts {
            store: self.store,
            exchanger: TokenExchanger::new(http.clone(), self.exchange),
            http,
            api: self.api,
            default_client_id: self.default_client_id,
            default_client_secret: self.default_client_secret,
            config: self.config,
        }))
    }
}
