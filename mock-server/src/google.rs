//! Google's behaviour, endpoint by endpoint: the checks it makes, in its order, and its answers.
//!
//! This is the part of the mock that must be right for the tool's verdicts to mean anything. It
//! is plain logic over the token store (no HTTP server, no locking), so each rule reads as the
//! reference document states it. [`answer`] is the dispatch: the refresh grant, revocation and
//! the API call are here; sign-in ([`crate::authorize`]), the device flow ([`crate::device`]),
//! OpenID Connect ([`crate::oidc`]) and service accounts ([`crate::service_account`]) are
//! handlers of their own below it, all taking a [`Ctx`] and giving a [`Reply`]
//! ([`crate::handler`]).

use std::sync::Arc;

use serde::Serialize;

use crate::authorize;
use crate::device;
use crate::handler::{ms, Ctx, Reply, TokenSuccess};
use crate::incoming::Incoming;
use crate::journal::{Endpoint, DEVICE_CODE_PATH};
use crate::oidc::{self, IdTokenFor};
use crate::service_account;
use crate::tokens::TokenStatus;
use crate::wire::{self, to_json};

/// Answers `request` as Google would.
pub(crate) fn answer(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    match request.endpoint {
        Endpoint::Token => token(ctx, request),
        Endpoint::TokenInfo => oidc::tokeninfo(ctx, request),
        Endpoint::Revoke => revoke(ctx, request),
        Endpoint::Api => api_profile(ctx, request),
        Endpoint::Discovery => oidc::discovery(ctx, request),
        Endpoint::Authorize if request.path == DEVICE_CODE_PATH => {
            device::device_code(ctx, request)
        }
        Endpoint::Authorize => authorize::authorize(ctx, request),
        Endpoint::UserInfo => oidc::userinfo(ctx, request),
        Endpoint::Other => Reply::new(404, "").error("not_found"),
    }
}

/// Revokes the token a [`RevokeThenGoogle`](crate::Action::RevokeThenGoogle) step targets.
pub(crate) fn revoke_presented_token(ctx: &mut Ctx<'_>, request: &Incoming) {
    let token = match request.endpoint {
        Endpoint::Token => request.form_value("refresh_token"),
        Endpoint::Api | Endpoint::UserInfo => request.bearer_token(),
        Endpoint::TokenInfo => request.param("access_token"),
        Endpoint::Revoke => request.param("token"),
        Endpoint::Discovery | Endpoint::Authorize | Endpoint::Other => None,
    };
    if let Some(token) = token {
        ctx.tokens.revoke(token, ctx.now_ms);
    }
}

/// `POST /token` with `grant_type=refresh_token`, checked in Google's order; the other grant
/// types are handed to their own modules.
fn token(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    use wire::*;

    if !request.is("POST") {
        return Reply::method_not_allowed("POST");
    }

    // 1. grant type
    let Some(grant_type) = request.form_value("grant_type") else {
        return Reply::token_error(400, INVALID_REQUEST, &missing_parameter("grant_type"));
    };
    match grant_type {
        "refresh_token" => {}
        "authorization_code" => return authorize::exchange_code(ctx, request),
        service_account::JWT_BEARER => return service_account::jwt_bearer(ctx, request),
        device::DEVICE_CODE_GRANT => return device::exchange_device_code(ctx, request),
        _ => {
            return Reply::token_error(400, UNSUPPORTED_GRANT_TYPE, &invalid_grant_type(grant_type))
        }
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
        TokenStatus::Superseded
            if ctx.tokens.superseded_within(
                refresh_token,
                ctx.now_ms,
                ctx.config.rotation_grace,
            ) => {}
        TokenStatus::Unknown => {
            return Reply::token_error(400, INVALID_GRANT, DESC_BAD_REQUEST);
        }
        TokenStatus::Superseded if ctx.config.reuse_revokes_family => {
            // Reuse detection: an old token again means a copy leaked; the family dies.
            ctx.tokens.revoke_family(refresh_token);
            return Reply::token_error(400, INVALID_GRANT, DESC_EXPIRED_OR_REVOKED);
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
    let account = oidc::account_of(ctx, view.grant);

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
    ctx.tokens.touch(refresh_token, ctx.now_ms);
    let access_token = ctx
        .tokens
        .issue_access(grant_id, Arc::clone(&scopes), ctx.now_ms + ms(ttl));
    let new_refresh_token = ctx.config.rotate_refresh_tokens.then(|| {
        ctx.tokens.supersede(refresh_token, ctx.now_ms);
        ctx.tokens
            .issue_refresh(grant_id, refresh_expires_at_ms, ctx.now_ms)
    });
    let id_token = if scopes.iter().any(|s| s == "openid") {
        oidc::id_token(
            ctx,
            &IdTokenFor {
                client_id,
                account: &account,
                access_token: Some(&access_token),
                nonce: None,
            },
        )
    } else {
        None
    };
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
