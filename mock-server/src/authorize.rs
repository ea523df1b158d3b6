//! Sign-in: `/o/oauth2/v2/auth` and the `authorization_code` grant, with Google's rules.
//!
//! There is no human in front of the mock, so its consent screen approves by itself, as the
//! configured [`Consent`](crate::Consent) says (which account, refuse, or untick scopes), and
//! answers with the redirect Google sends after the user clicks "Allow". That is what lets an
//! application's OAuth callback be tested end to end, in a real browser or with a client
//! library, without Google.
//!
//! The rules that matter to an application:
//! - the `redirect_uri` must be registered for the client (loopback URIs for a client with none);
//! - a code is exchanged once, within ten minutes, by the client it was issued to, with the same
//!   `redirect_uri` and, when the sign-in sent a PKCE challenge (`S256` or `plain`), its verifier;
//! - a refresh token comes only with `access_type=offline`, and once the account has consented
//!   for that client, again only with `prompt=consent`;
//! - `include_granted_scopes=true` adds the scopes granted before.
//!
//! Codes are stored as SHA-256 digests, as tokens are.

use std::collections::HashSet;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};

use crate::config::ClientRegistration;
use crate::handler::{ms, Ctx, Reply, TokenSuccess};
use crate::incoming::Incoming;
use crate::oidc::{self, IdTokenFor};
use crate::sign_in::{key, CodeRecord};
use crate::tokens::Account;
use crate::wire;

/// How long a code can be exchanged, on the mock clock.
const CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// Scopes the consent screen never lets a user untick.
const BASIC_SCOPES: [&str; 3] = ["openid", EMAIL_SCOPE, PROFILE_SCOPE];
const EMAIL_SCOPE: &str = "https://www.googleapis.com/auth/userinfo.email";
const PROFILE_SCOPE: &str = "https://www.googleapis.com/auth/userinfo.profile";

/// Google's short scope names as its token endpoint spells them back.
pub(crate) fn expand_scope(scope: &str) -> &str {
    match scope {
        "email" => EMAIL_SCOPE,
        "profile" => PROFILE_SCOPE,
        other => other,
    }
}

/// Whether `uri` may receive the redirect for `client`.
pub(crate) fn redirect_allowed(client: &ClientRegistration, uri: &str) -> bool {
    if !client.redirect_uris.is_empty() {
        return client.redirect_uris.iter().any(|r| r == uri);
    }
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|host| {
            uri.strip_prefix(host)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/', '?']))
        })
}

/// Google's error page: HTML, for the user, as when the request is too broken to redirect.
fn error_page(status: u16, error: &str, detail: &str) -> Reply {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    Reply::new(
        status,
        format!(
            "<!doctype html><html><head><title>Error {status}: {error}</title></head><body>\
             <h1>Access blocked: this app's request is invalid</h1>\
             <p>Error {status}: {error}</p><p>{}</p></body></html>",
            escape(detail)
        ),
    )
    .header("content-type", wire::CONTENT_TYPE_HTML)
    .error(error)
}

/// The redirect back to the application.
fn redirect(redirect_uri: &str, pairs: &[(&str, &str)], state: Option<&str>) -> Reply {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!("{redirect_uri}{separator}{}", query.finish());
    let error = pairs
        .iter()
        .find(|(k, _)| *k == "error")
        .map(|(_, v)| (*v).to_string());
    let mut reply = Reply::new(302, "").header("location", &location);
    reply.error = error;
    reply
}

fn random_code() -> String {
    let mut bytes = [0u8; 54];
    rand::rng().fill_bytes(&mut bytes);
    format!("4/0A{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// `GET /o/oauth2/v2/auth`: checks the request as Google does, then consents as configured.
pub(crate) fn authorize(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    if !(request.is("GET") || request.is("POST")) {
        return Reply::method_not_allowed("GET, POST");
    }
    let missing = |name: &str| error_page(400, "invalid_request", &wire::missing_parameter(name));
    let Some(client_id) = request.param("client_id") else {
        return missing("client_id");
    };
    let Some(client) = ctx.clients.iter().find(|c| c.client_id == client_id) else {
        return error_page(401, "invalid_client", wire::DESC_CLIENT_NOT_FOUND);
    };
    if client.deleted {
        return error_page(401, "deleted_client", wire::DESC_CLIENT_DELETED);
    }
    let Some(redirect_uri) = request.param("redirect_uri") else {
        return missing("redirect_uri");
    };
    if !redirect_allowed(client, redirect_uri) {
        return error_page(
            400,
            wire::REDIRECT_URI_MISMATCH,
            &format!(
                "You can't sign in because this app sent an invalid request: redirect_uri={redirect_uri} is not registered for the client."
            ),
        );
    }
    let state = request.param("state");
    let Some(response_type) = request.param("response_type") else {
        return missing("response_type");
    };
    if response_type != "code" {
        return redirect(
            redirect_uri,
            &[("error", "unsupported_response_type")],
            state,
        );
    }
    let Some(scope) = request.param("scope") else {
        return missing("scope");
    };
    let challenge = match (
        request.param("code_challenge"),
        request.param("code_challenge_method"),
    ) {
        (None, None) => None,
        (None, Some(_)) => return missing("code_challenge"),
        (Some(challenge), method) => {
            let method = method.unwrap_or("plain");
            if method != "S256" && method != "plain" {
                return error_page(
                    400,
                    "invalid_request",
                    &format!("Invalid code_challenge_method: {method}"),
                );
            }
            Some((method.to_string(), challenge.to_string()))
        }
    };
    let access_type = request.param("access_type").unwrap_or("online");
    if access_type != "online" && access_type != "offline" {
        return error_page(
            400,
            "invalid_request",
            &format!("Invalid access_type: {access_type}"),
        );
    }

    let consent = &ctx.config.consent;
    if consent.deny {
        return redirect(redirect_uri, &[("error", "access_denied")], state);
    }
    let email = consent
        .account
        .as_deref()
        .or_else(|| request.param("login_hint").filter(|h| h.contains('@')))
        .unwrap_or(&ctx.config.email);
    let account = if email == ctx.config.email {
        Account {
            email: email.into(),
            sub: ctx.config.subject.as_str().into(),
        }
    } else {
        Account::for_email(email)
    };

    let mut scopes: Vec<String> = Vec::new();
    for s in scope.split_whitespace().map(expand_scope) {
        let withheld = !BASIC_SCOPES.contains(&s) && consent.withhold_scopes.iter().any(|w| w == s);
        if !withheld && !scopes.iter().any(|have| have == s) {
            scopes.push(s.to_string());
        }
    }
    let consent_key = (client_id.to_string(), account.sub.to_string());
    if request.param("include_granted_scopes") == Some("true") {
        if let Some(prior) = ctx.sign_in.consents.get(&consent_key) {
            for s in &prior.scopes {
                if !scopes.contains(s) {
                    scopes.push(s.clone());
                }
            }
        }
    }
    let prompt_consent = request
        .param("prompt")
        .is_some_and(|p| p.split_whitespace().any(|p| p == "consent"));

    let code = random_code();
    let scope_text = scopes.join(" ");
    ctx.sign_in.insert(
        &code,
        CodeRecord {
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            scopes,
            account,
            offline: access_type == "offline",
            prompt_consent,
            nonce: request.param("nonce").map(str::to_string),
            challenge,
            expires_at_ms: ctx.now_ms + CODE_TTL_MS,
            used: false,
        },
        ctx.now_ms,
    );
    redirect(
        redirect_uri,
        &[
            ("code", &code),
            ("scope", &scope_text),
            ("authuser", "0"),
            ("prompt", "consent"),
        ],
        state,
    )
}

/// Checks the client credentials of a token request as Google does.
pub(crate) fn authenticate_client<'c>(
    clients: &'c [ClientRegistration],
    request: &Incoming,
) -> Result<&'c ClientRegistration, Reply> {
    use wire::*;
    let credentials = request.client_credentials();
    let Some(client_id) = credentials.id.as_deref() else {
        return Err(Reply::token_error(
            400,
            INVALID_REQUEST,
            &missing_parameter("client_id"),
        ));
    };
    let Some(client) = clients.iter().find(|c| c.client_id == client_id) else {
        return Err(Reply::token_error(
            401,
            INVALID_CLIENT,
            DESC_CLIENT_NOT_FOUND,
        ));
    };
    if client.deleted {
        return Err(Reply::token_error(401, DELETED_CLIENT, DESC_CLIENT_DELETED));
    }
    if !client.client_secret.is_empty()
        && credentials.secret.as_deref() != Some(client.client_secret.as_str())
    {
        return Err(Reply::token_error(401, INVALID_CLIENT, DESC_UNAUTHORIZED));
    }
    Ok(client)
}

fn pkce_matches(method: &str, challenge: &str, verifier: &str) -> bool {
    match method {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge,
        _ => verifier == challenge,
    }
}

/// `POST /token` with `grant_type=authorization_code`.
pub(crate) fn exchange_code(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    use wire::*;
    let client_id = match authenticate_client(ctx.clients, request) {
        Ok(client) => client.client_id.clone(),
        Err(reply) => return reply,
    };
    let Some(code) = request.form_value("code") else {
        return Reply::token_error(400, INVALID_REQUEST, &missing_parameter("code"));
    };
    let now_ms = ctx.now_ms;
    let Some(record) = ctx.sign_in.codes.get_mut(&key(code)) else {
        return Reply::token_error(400, INVALID_GRANT, DESC_MALFORMED_CODE);
    };
    if record.used || record.expires_at_ms <= now_ms || record.client_id != client_id {
        return Reply::token_error(400, INVALID_GRANT, DESC_BAD_REQUEST);
    }
    let Some(redirect_uri) = request.form_value("redirect_uri") else {
        return Reply::token_error(400, INVALID_REQUEST, &missing_parameter("redirect_uri"));
    };
    if redirect_uri != record.redirect_uri {
        return Reply::token_error(400, REDIRECT_URI_MISMATCH, DESC_BAD_REQUEST);
    }
    if let Some((method, challenge)) = &record.challenge {
        let Some(verifier) = request.form_value("code_verifier") else {
            return Reply::token_error(400, INVALID_GRANT, DESC_MISSING_CODE_VERIFIER);
        };
        if !pkce_matches(method, challenge, verifier) {
            return Reply::token_error(400, INVALID_GRANT, DESC_INVALID_CODE_VERIFIER);
        }
    }
    record.used = true;
    let scopes = record.scopes.clone();
    let account = record.account.clone();
    let nonce = record.nonce.clone();
    let offline = record.offline;
    let prompt_consent = record.prompt_consent;

    let prior = ctx
        .sign_in
        .consents
        .entry((client_id.clone(), account.sub.to_string()))
        .or_default();
    let issue_refresh = offline && (!prior.refresh_token_issued || prompt_consent);
    prior.refresh_token_issued |= issue_refresh;
    let mut known: HashSet<String> = prior.scopes.iter().cloned().collect();
    for s in &scopes {
        if known.insert(s.clone()) {
            prior.scopes.push(s.clone());
        }
    }

    let grant = ctx.tokens.new_grant(&client_id, &scopes, issue_refresh);
    ctx.tokens.set_account(grant, account.clone());
    let ttl = ctx.config.access_token_ttl;
    let access_token =
        ctx.tokens
            .issue_access(grant, Arc::from(scopes.as_slice()), now_ms + ms(ttl));
    let refresh_token = issue_refresh.then(|| {
        let expires_at_ms = ctx
            .config
            .refresh_token_ttl
            .map(|ttl| now_ms.saturating_add(ms(ttl)));
        let token = ctx.tokens.issue_refresh(grant, expires_at_ms, now_ms);
        if let Some(limit) = ctx.config.refresh_token_limit {
            ctx.tokens.limit_live_refresh_tokens(grant, limit);
        }
        token
    });
    let id_token = if scopes.iter().any(|s| s == "openid") {
        oidc::id_token(
            ctx,
            &IdTokenFor {
                client_id: &client_id,
                account: &account,
                access_token: Some(&access_token),
                nonce: nonce.as_deref(),
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
            refresh_token: refresh_token.as_deref(),
            scope: &scope,
            token_type: TOKEN_TYPE,
            id_token: id_token.as_deref(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_are_allowed_only_for_a_client_without_registered_uris() {
        let open = ClientRegistration::new("c", "s");
        assert!(redirect_allowed(&open, "http://127.0.0.1:8080/cb"));
        assert!(redirect_allowed(&open, "http://localhost"));
        assert!(!redirect_allowed(&open, "http://localhost.evil.example/cb"));
        assert!(!redirect_allowed(&open, "https://app.example/cb"));
        let web = open.with_redirect_uris(vec!["https://app.example/cb".to_string()]);
        assert!(redirect_allowed(&web, "https://app.example/cb"));
        assert!(!redirect_allowed(&web, "https://app.example/cb2"));
        assert!(!redirect_allowed(&web, "http://127.0.0.1:8080/cb"));
    }

    #[test]
    fn pkce_s256_and_plain_match_only_their_verifier() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches("S256", challenge, verifier));
        assert!(!pkce_matches("S256", challenge, "other"));
        assert!(pkce_matches("plain", "abc", "abc"));
        assert!(!pkce_matches("plain", "abc", "abd"));
    }
}
