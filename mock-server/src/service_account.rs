//! The jwt-bearer grant that trades a service account's signed assertion for an access token
//! (the accounts and their key files are [`crate::accounts`]'s).
//!
//! Every Google client library does the same with a service-account key file: it signs a JWT
//! (`iss` the account's email, `aud` the key file's `token_uri`, `scope`, `iat`, `exp` an hour
//! later, `sub` the user to impersonate under domain-wide delegation) and posts it with
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`. The mock checks what Google checks,
//! in its order, and answers Google's error bodies.

use std::sync::Arc;

use serde::Serialize;

use crate::handler::{ms, Ctx, Reply};
use crate::incoming::Incoming;
use crate::journal::{LEGACY_TOKEN_PATHS, TOKEN_PATH};
use crate::oidc::{self, IdTokenFor};
use crate::signing::{verify_rs256, JwtParts};
use crate::tokens::Account;
use crate::wire;

/// The grant type of a service-account assertion.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long an assertion may live (`exp - iat`).
const MAX_LIFETIME_SECS: i64 = 3600;
/// Clock difference tolerated between the signer and the mock clock.
const CLOCK_SKEW_SECS: i64 = 300;
/// Audiences Google accepts besides this server's own token URLs.
const GOOGLE_AUDIENCES: [&str; 3] = [
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
];

#[derive(Serialize)]
struct AccessTokenOnly<'a> {
    access_token: &'a str,
    expires_in: u64,
    token_type: &'static str,
}

#[derive(Serialize)]
struct IdTokenOnly<'a> {
    id_token: &'a str,
}

fn invalid_grant(description: &str) -> Reply {
    Reply::token_error(400, wire::INVALID_GRANT, description)
}

/// `POST /token` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`.
pub(crate) fn jwt_bearer(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    use wire::*;
    let Some(assertion) = request.form_value("assertion") else {
        return Reply::token_error(400, INVALID_REQUEST, &missing_parameter("assertion"));
    };
    let Some(parts) = JwtParts::split(assertion) else {
        return invalid_grant(DESC_INVALID_JWT_SIGNATURE);
    };
    let claim = |name: &str| parts.claims.get(name).and_then(serde_json::Value::as_str);
    let Some(email) = claim("iss") else {
        return invalid_grant(DESC_ACCOUNT_NOT_FOUND);
    };
    let Some(account) = ctx.service_accounts.by_email.get(email) else {
        return invalid_grant(DESC_ACCOUNT_NOT_FOUND);
    };
    if !verify_rs256(&account.public, &parts) {
        return invalid_grant(DESC_INVALID_JWT_SIGNATURE);
    }
    let own = |path: &str| format!("{}{path}", ctx.base_url);
    let audience_ok = claim("aud").is_some_and(|aud| {
        GOOGLE_AUDIENCES.contains(&aud)
            || aud == own(TOKEN_PATH)
            || LEGACY_TOKEN_PATHS.iter().any(|p| aud == own(p))
    });
    if !audience_ok {
        return invalid_grant(DESC_JWT_AUDIENCE);
    }
    let now = ctx.now_ms.div_euclid(1000);
    let number = |name: &str| parts.claims.get(name).and_then(serde_json::Value::as_i64);
    let timely = match (number("iat"), number("exp")) {
        (Some(iat), Some(exp)) => {
            exp > iat
                && exp - iat <= MAX_LIFETIME_SECS
                && iat <= now + CLOCK_SKEW_SECS
                && exp > now - CLOCK_SKEW_SECS
        }
        _ => false,
    };
    if !timely {
        return invalid_grant(DESC_JWT_NOT_SHORT_LIVED);
    }
    let scope = claim("scope").filter(|s| !s.trim().is_empty());
    let target_audience = claim("target_audience").filter(|s| !s.is_empty());
    if scope.is_none() && target_audience.is_none() {
        return Reply::token_error(400, INVALID_SCOPE, DESC_INVALID_SA_SCOPE);
    }
    let subject = claim("sub").filter(|sub| *sub != email);
    if subject.is_some() && !account.delegation {
        return Reply::token_error(401, UNAUTHORIZED_CLIENT, DESC_DELEGATION_DENIED);
    }
    let owner = match subject {
        Some(user) => Account::for_email(user),
        None => Account {
            email: email.into(),
            sub: account.unique_id.as_str().into(),
        },
    };
    let unique_id = account.unique_id.clone();

    if let (None, Some(audience)) = (scope, target_audience) {
        // An id_token for calling a service (Cloud Run, IAP): `aud` is the target audience.
        return match oidc::id_token(
            ctx,
            &IdTokenFor {
                client_id: audience,
                account: &owner,
                access_token: None,
                nonce: None,
            },
        ) {
            Some(id_token) => Reply::token_json(
                200,
                to_json(&IdTokenOnly {
                    id_token: &id_token,
                }),
            ),
            None => {
                Reply::token_json(500, INTERNAL_FAILURE_BODY.to_string()).error(INTERNAL_FAILURE)
            }
        };
    }
    let scopes: Vec<String> = scope
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let grant = ctx.tokens.new_grant(&unique_id, &scopes, false);
    ctx.tokens.set_account(grant, owner);
    let ttl = ctx.config.access_token_ttl;
    let access_token =
        ctx.tokens
            .issue_access(grant, Arc::from(scopes.as_slice()), ctx.now_ms + ms(ttl));
    Reply::token_json(
        200,
        to_json(&AccessTokenOnly {
            access_token: &access_token,
            expires_in: ttl.as_secs(),
            token_type: TOKEN_TYPE,
        }),
    )
}
