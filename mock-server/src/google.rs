//! Google's behaviour, endpoint by endpoint: the checks it makes, in its order, and its answers.
//!
//! This is the part of the mock that must be right for the tool's verdicts to mean anything. It
//! is plain logic over the token store (no HTTP server, no locking), so each rule reads as the
//! reference document states it.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::Serialize;

use crate::config::{ClientRegistration, MockConfig};
use crate::incoming::Incoming;
use crate::journal::{Endpoint, CERTS_PATH, REVOKE_PATH, TOKEN_PATH};
use crate::tokens::{TokenStatus, TokenStore};
use crate::wire::{self, to_json};

/// An answer, before it becomes an HTTP response.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
    /// What the journal records as the error code.
    pub(crate) error: Option<String>,
}

impl Reply {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            error: None,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn error(mut self, code: &str) -> Self {
        self.error = Some(code.to_string());
        self
    }

    /// A JSON answer with the token endpoint's headers.
    fn token_json(status: u16, body: String) -> Self {
        let mut reply = Self::new(status, body);
        for (name, value) in wire::token_endpoint_headers() {
            reply = reply.header(name, value);
        }
        reply
    }

    fn token_error(status: u16, error: &str, description: &str) -> Self {
        Self::token_json(status, wire::error_body(error, description)).error(error)
    }

    fn method_not_allowed(allow: &str) -> Self {
        Self::new(405, "")
            .header("allow", allow)
            .error("method_not_allowed")
    }

    /// A canned answer from a script step, journaled with the `error` its body names, if any.
    pub(crate) fn canned(status: u16, headers: &[(String, String)], body: &str) -> Self {
        let error = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|json| match &json["error"] {
                serde_json::Value::String(code) => Some(code.clone()),
                serde_json::Value::Object(api) => api["status"].as_str().map(str::to_string),
                _ => None,
            });
        Self {
            status,
            headers: headers.to_vec(),
            body: body.to_string(),
            error,
        }
    }
}

/// Everything the Google logic reads or changes.
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a MockConfig,
    pub(crate) clients: &'a [ClientRegistration],
    pub(crate) tokens: &'a mut TokenStore,
    pub(crate) now_ms: i64,
    /// The mock's own base URL, for the discovery document.
    pub(crate) base_url: &'a str,
}

/// Answers `request` as Google would.
pub(crate) fn answer(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    match request.endpoint {
        Endpoint::Token => token(ctx, request),
        Endpoint::TokenInfo => tokeninfo(ctx, request),
        Endpoint::Revoke => revoke(ctx, request),
        Endpoint::Api => api_profile(ctx, request),
        Endpoint::Discovery => discovery(ctx, request),
        Endpoint::Other => Reply::new(404, "").error("not_found"),
    }
}

/// Revokes the token a [`RevokeThenGoogle`](crate::Action::RevokeThenGoogle) step targets.
pub(crate) fn revoke_presented_token(ctx: &mut Ctx<'_>, request: &Incoming) {
    let token = match request.endpoint {
        Endpoint::Token => request.form_value("refresh_token"),
        Endpoint::Api => request.bearer_token(),
        Endpoint::TokenInfo => request.param("access_token"),
        Endpoint::Revoke => request.param("token"),
        Endpoint::Discovery | Endpoint::Other => None,
    };
    if let Some(token) = token {
        ctx.tokens.revoke(token, ctx.now_ms);
    }
}

fn ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Serialize)]
struct TokenSuccess<'a> {
    access_token: &'a str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    scope: &'a str,
    token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
}

/// `POST /token` with `grant_type=refresh_token`, checked in Google's order.
fn token(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    use wire::*;

    if !request.is("POST") {
        return Reply::method_not_allowed("POST");
    }

    // 1. grant type
    let Some(grant_type) = request.form_value("grant_type") else {
        return Reply::token_error(400, INVALID_REQUEST, &missing_parameter("grant_type"));
    };
    if grant_type != "refresh_token" {
        return Reply::token_error(400, UNSUPPORTED_GRANT_TYPE, &invalid_grant_type(grant_type));
    }

    // 2. client
    let credentials = request.client_credentials();
    let Some(client_id) = credentials.id.as_deref() else {
        return Reply::token_error(400, INVALID_REQUEST, &missing_parameter("client_id"));
    };
    let Some(client) = ctx.clients.iter().find(|c| c.client_id == client_id) else {
        return Reply::token_error(401, INVALID_CLIENT, DESC_CLIENT_NOT_FOUND);
    };
    if client.deleted {
        return Reply::token_error(401, DELETED_CLIENT, DESC_CLIENT_DELETED);
    }
    if !client.client_secret.is_empty()
        && credentials.secret.as_deref() != Some(client.client_secret.as_str())
    {
        return Reply::token_error(401, INVALID_CLIENT, DESC_UNAUTHORIZED);
    }

    // 3. refresh token
    let Some(refresh_token) = request.form_value("refresh_token") else {
        return Reply::token_error(400, INVALID_REQUEST, &missing_parameter("refresh_token"));
    };
    match ctx.tokens.refresh_status(refresh_token, ctx.now_ms) {
        TokenStatus::Live => {}
        TokenStatus::Unknown => {
            return Reply::token_error(400, INVALID_GRANT, DESC_BAD_REQUEST);
        }
        TokenStatus::Revoked | TokenStatus::Superseded | TokenStatus::Expired => {
            return Reply::token_error(400, INVALID_GRANT, DESC_EXPIRED_OR_REVOKED);
        }
    }
    let Some(view) = ctx.tokens.refresh_view(refresh_token) else {
        return Reply::token_error(400, INVALID_GRANT, DESC_BAD_REQUEST);
    };
    if &*view.grant.client_id != client_id {
        return Reply::token_error(401, UNAUTHORIZED_CLIENT, DESC_UNAUTHORIZED);
    }
    let grant_id = view.grant_id;
    let refresh_expires_at_ms = view.expires_at_ms;
    let granted = Arc::clone(&view.grant.scopes);

    // 4. optional narrowing scope
    let scopes: Arc<[String]> = match request.form_value("scope") {
        None => granted,
        Some(requested) => {
            let mut wanted: Vec<String> = Vec::new();
            for scope in requested.split_whitespace() {
                if !wanted.iter().any(|w| w == scope) {
                    wanted.push(scope.to_string());
                }
            }
            let invalid: Vec<&String> = wanted.iter().filter(|s| !granted.contains(s)).collect();
            if !invalid.is_empty() {
                return Reply::token_error(400, INVALID_SCOPE, &invalid_scopes(&invalid));
            }
            Arc::from(wanted)
        }
    };

    // 5. success
    let ttl = ctx.config.access_token_ttl;
    let access_token = ctx
        .tokens
        .issue_access(grant_id, Arc::clone(&scopes), ctx.now_ms + ms(ttl));
    let new_refresh_token = ctx.config.rotate_refresh_tokens.then(|| {
        ctx.tokens.supersede(refresh_token);
        ctx.tokens.issue_refresh(grant_id, refresh_expires_at_ms)
    });
    let id_token = scopes
        .iter()
        .any(|s| s == "openid")
        .then(|| id_token(ctx.config, client_id, ctx.now_ms));
    let scope = scopes.join(" ");
    Reply::token_json(
        200,
        to_json(&TokenSuccess {
            access_token: &access_token,
            expires_in: ttl.as_secs(),
            refresh_token: new_refresh_token.as_deref(),
            scope: &scope,
            token_type: TOKEN_TYPE,
            id_token: id_token.as_deref(),
        }),
    )
}

#[derive(Serialize)]
struct JwtHeader {
    alg: &'static str,
    kid: &'static str,
    typ: &'static str,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'static str,
    azp: &'a str,
    aud: &'a str,
    sub: &'a str,
    email: &'a str,
    email_verified: bool,
    iat: i64,
    exp: i64,
}

/// A JWT-shaped id_token. The signature is random bytes: it has the right shape and length for
/// RS256 but verifies against no key.
fn id_token(config: &MockConfig, client_id: &str, now_ms: i64) -> String {
    let iat = now_ms.div_euclid(1000);
    let header = to_json(&JwtHeader {
        alg: "RS256",
        kid: "mock-server-key",
        typ: "JWT",
    });
    let claims = to_json(&IdTokenClaims {
        iss: wire::ID_TOKEN_ISSUER,
        azp: client_id,
        aud: client_id,
        sub: &config.subject,
        email: &config.email,
        email_verified: true,
        iat,
        exp: iat + 3600,
    });
    let mut signature = [0u8; 256];
    rand::rng().fill_bytes(&mut signature);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[derive(Serialize)]
struct TokenInfo<'a> {
    azp: &'a str,
    aud: &'a str,
    sub: &'a str,
    scope: &'a str,
    exp: String,
    expires_in: String,
    email: &'a str,
    email_verified: &'static str,
    access_type: &'static str,
}

/// `GET /tokeninfo?access_token=…` (or the same as a POST form).
fn tokeninfo(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    if !(request.is("GET") || request.is("POST")) {
        return Reply::method_not_allowed("GET, POST");
    }
    let invalid = || {
        Reply::token_json(400, wire::TOKENINFO_INVALID_BODY.to_string()).error(wire::INVALID_TOKEN)
    };
    let Some(token) = request.param("access_token") else {
        return invalid();
    };
    let Some(view) = ctx.tokens.live_access(token, ctx.now_ms) else {
        return invalid();
    };
    let scope = view.scopes.join(" ");
    // Whole seconds, as `exp` is: `exp - expires_in` is the mock clock's current second.
    let exp = view.expires_at_ms.div_euclid(1000);
    let expires_in = exp - ctx.now_ms.div_euclid(1000);
    Reply::token_json(
        200,
        to_json(&TokenInfo {
            azp: &view.grant.client_id,
            aud: &view.grant.client_id,
            sub: &ctx.config.subject,
            scope: &scope,
            exp: exp.to_string(),
            expires_in: expires_in.to_string(),
            email: &ctx.config.email,
            email_verified: "true",
            access_type: if view.grant.offline {
                "offline"
            } else {
                "online"
            },
        }),
    )
}

/// `POST /revoke` with form (or query) `token=…`.
fn revoke(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    if !request.is("POST") {
        return Reply::method_not_allowed("POST");
    }
    let revoked = request
        .param("token")
        .is_some_and(|token| ctx.tokens.revoke(token, ctx.now_ms));
    if revoked {
        let mut reply = Reply::new(200, "");
        for (name, value) in wire::token_endpoint_headers() {
            if name != "content-type" {
                reply = reply.header(name, value);
            }
        }
        reply
    } else {
        Reply::token_json(400, wire::REVOKE_INVALID_BODY.to_string()).error(wire::INVALID_TOKEN)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Profile<'a> {
    email_address: &'a str,
    messages_total: u64,
    threads_total: u64,
    history_id: &'static str,
}

/// `GET /gmail/v1/users/me/profile` with a bearer token.
fn api_profile(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    if !request.is("GET") {
        return Reply::method_not_allowed("GET");
    }
    let live = request
        .bearer_token()
        .and_then(|token| ctx.tokens.live_access(token, ctx.now_ms))
        .is_some();
    if live {
        Reply::new(
            200,
            to_json(&Profile {
                email_address: &ctx.config.email,
                messages_total: 1_234,
                threads_total: 987,
                history_id: "4815162342",
            }),
        )
        .header("content-type", wire::CONTENT_TYPE_JSON)
    } else {
        Reply::new(401, wire::API_UNAUTHENTICATED_BODY)
            .header("content-type", wire::CONTENT_TYPE_JSON)
            .header("www-authenticate", wire::API_WWW_AUTHENTICATE)
            .error(wire::INVALID_TOKEN)
    }
}

#[derive(Serialize)]
struct DiscoveryDocument<'a> {
    issuer: &'a str,
    authorization_endpoint: String,
    token_endpoint: String,
    revocation_endpoint: String,
    jwks_uri: String,
    response_types_supported: [&'static str; 1],
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: [&'static str; 1],
    scopes_supported: [&'static str; 3],
    token_endpoint_auth_methods_supported: [&'static str; 2],
    claims_supported: [&'static str; 8],
    grant_types_supported: [&'static str; 1],
}

/// `GET /.well-known/openid-configuration`, shaped like Google's but naming this mock's own
/// endpoints, and `GET /oauth2/v3/certs`: an empty key set, since the mock's id_tokens carry
/// random signatures that no key verifies. The mock has no consent screen: the advertised
/// authorization endpoint answers 404 (seed refresh tokens through the mock's owner instead).
fn discovery(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    if !request.is("GET") {
        return Reply::method_not_allowed("GET");
    }
    let base = ctx.base_url;
    let body = if request.path == CERTS_PATH {
        r#"{"keys":[]}"#.to_string()
    } else {
        to_json(&DiscoveryDocument {
            issuer: base,
            authorization_endpoint: format!("{base}/o/oauth2/v2/auth"),
            token_endpoint: format!("{base}{TOKEN_PATH}"),
            revocation_endpoint: format!("{base}{REVOKE_PATH}"),
            jwks_uri: format!("{base}{CERTS_PATH}"),
            response_types_supported: ["code"],
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: ["RS256"],
            scopes_supported: ["openid", "email", "profile"],
            token_endpoint_auth_methods_supported: ["client_secret_post", "client_secret_basic"],
            claims_supported: [
                "aud",
                "email",
                "email_verified",
                "exp",
                "iat",
                "iss",
                "sub",
                "azp",
            ],
            grant_types_supported: ["refresh_token"],
        })
    };
    Reply::new(200, body).header("content-type", wire::CONTENT_TYPE_JSON)
}
