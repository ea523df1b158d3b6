//! The device flow (TVs and limited-input devices): `POST /device/code`, then the token
//! endpoint's `urn:ietf:params:oauth:grant-type:device_code` grant.
//!
//! On a real device the user types the `user_code` at `verification_url` on another screen,
//! and the device polls the token endpoint meanwhile. Here the consent step approves (or, with
//! [`Consent::deny`](crate::Consent::deny), refuses) by itself: at once, so the first poll gets
//! the tokens, or after [`Consent::device_pending_polls`](crate::Consent::device_pending_polls)
//! polls answered `authorization_pending`, as while the user is still typing. A code is good
//! for 30 minutes on the mock clock and is exchanged once.
//!
//! The answers a polling device gets, as Google's device flow gives them:
//! - `428 authorization_pending`: the user has not answered yet; poll again after `interval`;
//! - `403 slow_down`: polled sooner than `interval` seconds (on the mock clock) after the last
//!   poll; the code's interval grows by 5 seconds, as RFC 8628 tells the device to;
//! - `403 access_denied`: the user refused;
//! - `400 expired_token`: the 30 minutes are over;
//! - `400 invalid_grant`: unknown code, another client's, or exchanged already.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::{Rng as _, RngExt as _};
use serde::Serialize;

use crate::authorize::{authenticate_client, expand_scope};
use crate::handler::{ms, Ctx, Reply, TokenSuccess};
use crate::incoming::Incoming;
use crate::oidc::{self, IdTokenFor};
use crate::sign_in::{key, DeviceRecord, MAX_DEVICE_CODES};
use crate::tokens::Account;
use crate::wire;

/// The device flow's token grant type.
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long a device code lives, as Google's: 30 minutes.
const DEVICE_CODE_TTL_SECS: i64 = 1800;
/// The polling interval a code starts with, seconds, as Google's.
const DEVICE_POLL_INTERVAL_SECS: i64 = 5;
/// How much `slow_down` adds to a code's interval, seconds (RFC 8628 section 3.5).
const SLOW_DOWN_STEP_SECS: i64 = 5;

#[derive(Serialize)]
struct DeviceCodeAnswer<'a> {
    device_code: &'a str,
    user_code: &'a str,
    expires_in: i64,
    interval: i64,
    verification_url: &'static str,
}

/// `POST /device/code` with `client_id` and `scope`.
pub(crate) fn device_code(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    use wire::*;
    if !request.is("POST") {
        return Reply::method_not_allowed("POST");
    }
    let Some(client_id) = request.param("client_id") else {
        return Reply::token_error(400, INVALID_REQUEST, &missing_parameter("client_id"));
    };
    let Some(client) = ctx.clients.iter().find(|c| c.client_id == client_id) else {
        return Reply::token_error(401, INVALID_CLIENT, DESC_CLIENT_NOT_FOUND);
    };
    if client.deleted {
        return Reply::token_error(401, DELETED_CLIENT, DESC_CLIENT_DELETED);
    }
    let Some(scope) = request.param("scope") else {
        return Reply::token_error(400, INVALID_REQUEST, &missing_parameter("scope"));
    };
    let mut scopes: Vec<String> = Vec::new();
    for s in scope.split_whitespace().map(expand_scope) {
        if !scopes.iter().any(|have| have == s) {
            scopes.push(s.to_string());
        }
    }
    let consent = &ctx.config.consent;
    let account = (!consent.deny).then(|| match consent.account.as_deref() {
        Some(email) if email != ctx.config.email => Account::for_email(email),
        _ => Account {
            email: ctx.config.email.as_str().into(),
            sub: ctx.config.subject.as_str().into(),
        },
    });
    scopes.retain(|s| !consent.withhold_scopes.contains(s) || s == "openid");

    let mut bytes = [0u8; 64];
    rand::rng().fill_bytes(&mut bytes);
    let device_code = format!("AH-1Ng{}", URL_SAFE_NO_PAD.encode(bytes));
    let letters: String = (0..8)
        .map(|_| char::from(b'A' + rand::rng().random_range(0..26u8)))
        .collect();
    let user_code = format!("{}-{}", &letters[..4], &letters[4..]);
    let codes = &mut ctx.sign_in.devices.codes;
    if codes.len() >= MAX_DEVICE_CODES {
        let now = ctx.now_ms;
        codes.retain(|_, r| !r.used && r.expires_at_ms > now);
    }
    if codes.len() < MAX_DEVICE_CODES {
        codes.insert(
            key(&device_code),
            DeviceRecord {
                client_id: client_id.to_string(),
                scopes,
                account,
                expires_at_ms: ctx.now_ms + DEVICE_CODE_TTL_SECS * 1000,
                used: false,
                pending_polls: consent.device_pending_polls,
                interval_secs: DEVICE_POLL_INTERVAL_SECS,
                last_poll_ms: None,
            },
        );
    }
    Reply::token_json(
        200,
        to_json(&DeviceCodeAnswer {
            device_code: &device_code,
            user_code: &user_code,
            expires_in: DEVICE_CODE_TTL_SECS,
            interval: DEVICE_POLL_INTERVAL_SECS,
            verification_url: "https://www.google.com/device",
        }),
    )
}

/// `POST /token` with `grant_type=urn:ietf:params:oauth:grant-type:device_code`.
pub(crate) fn exchange_device_code(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    use wire::*;
    let client_id = match authenticate_client(ctx.clients, request) {
        Ok(client) => client.client_id.clone(),
        Err(reply) => return reply,
    };
    let Some(device_code) = request.form_value("device_code") else {
        return Reply::token_error(400, INVALID_REQUEST, &missing_parameter("device_code"));
    };
    let now_ms = ctx.now_ms;
    let Some(record) = ctx.sign_in.devices.codes.get_mut(&key(device_code)) else {
        return Reply::token_error(400, INVALID_GRANT, DESC_BAD_REQUEST);
    };
    if record.used || record.client_id != client_id {
        return Reply::token_error(400, INVALID_GRANT, DESC_BAD_REQUEST);
    }
    if record.expires_at_ms <= now_ms {
        return Reply::token_error(400, EXPIRED_TOKEN, DESC_BAD_REQUEST);
    }
    let too_soon = record
        .last_poll_ms
        .is_some_and(|last| now_ms.saturating_sub(last) < record.interval_secs * 1000);
    record.last_poll_ms = Some(now_ms);
    if too_soon {
        record.interval_secs += SLOW_DOWN_STEP_SECS;
        return Reply::token_error(403, SLOW_DOWN, DESC_FORBIDDEN);
    }
    if record.pending_polls > 0 {
        record.pending_polls -= 1;
        return Reply::token_error(428, AUTHORIZATION_PENDING, DESC_PRECONDITION_REQUIRED);
    }
    let Some(account) = record.account.clone() else {
        return Reply::token_error(403, ACCESS_DENIED, DESC_FORBIDDEN);
    };
    record.used = true;
    let scopes = record.scopes.clone();

    let grant = ctx.tokens.new_grant(&client_id, &scopes, true);
    ctx.tokens.set_account(grant, account.clone());
    let ttl = ctx.config.access_token_ttl;
    let access_token =
        ctx.tokens
            .issue_access(grant, Arc::from(scopes.as_slice()), now_ms + ms(ttl));
    let expires_at_ms = ctx
        .config
        .refresh_token_ttl
        .map(|ttl| now_ms.saturating_add(ms(ttl)));
    let refresh_token = ctx.tokens.issue_refresh(grant, expires_at_ms, now_ms);
    if let Some(limit) = ctx.config.refresh_token_limit {
        ctx.tokens.limit_live_refresh_tokens(grant, limit);
    }
    let id_token = if scopes.iter().any(|s| s == "openid") {
        oidc::id_token(
            ctx,
            &IdTokenFor {
                client_id: &client_id,
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
            refresh_token: Some(&refresh_token),
            scope: &scope,
            token_type: TOKEN_TYPE,
            id_token: id_token.as_deref(),
        }),
    )
}
