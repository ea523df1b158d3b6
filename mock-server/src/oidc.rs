//! Google as an OpenID Connect provider: the discovery document, the published signing keys,
//! id_tokens, userinfo and tokeninfo.
//!
//! Everything a client checks when it verifies an id_token must agree: the discovery `issuer`
//! and every id_token's `iss` are the configured issuer (by default Google's own,
//! `https://accounts.google.com`, which google-auth and google-auth-library insist on), and the
//! token's `kid` names a key published at `/oauth2/v3/certs` (JWKS) and `/oauth2/v1/certs` (PEM).

use serde::Serialize;

use crate::handler::{Ctx, Reply};
use crate::incoming::Incoming;
use crate::journal::{
    AUTHORIZE_PATH, CERTS_PATH, DEVICE_CODE_PATH, PEM_CERTS_PATH, REVOKE_PATH, TOKEN_PATH,
    USERINFO_PATH,
};
use crate::signing::{at_hash, JwtParts};
use crate::tokens::{Account, Grant};
use crate::wire::{self, to_json};

/// How long an id_token lives, as Google's: one hour.
pub(crate) const ID_TOKEN_TTL_SECS: i64 = 3600;
/// `cache-control` of the published keys (Google's is hours; short here so a test that rotates
/// keys is not defeated by a client's cache for long).
const CERTS_CACHE_CONTROL: &str = "public, max-age=300, must-revalidate, no-transform";

/// The `email` scope, short and long.
pub(crate) fn has_email_scope(scopes: &[String]) -> bool {
    scopes
        .iter()
        .any(|s| s == "email" || s == "https://www.googleapis.com/auth/userinfo.email")
}

/// The `profile` scope, short and long.
fn has_profile_scope(scopes: &[String]) -> bool {
    scopes
        .iter()
        .any(|s| s == "profile" || s == "https://www.googleapis.com/auth/userinfo.profile")
}

/// The account a grant belongs to: its own, or the configured default account.
pub(crate) fn account_of(ctx: &Ctx<'_>, grant: &Grant) -> Account {
    grant.account.clone().unwrap_or_else(|| Account {
        email: ctx.config.email.as_str().into(),
        sub: ctx.config.subject.as_str().into(),
    })
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    azp: &'a str,
    aud: &'a str,
    sub: &'a str,
    email: &'a str,
    email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    at_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    iat: i64,
    exp: i64,
}

/// What an id_token is about.
pub(crate) struct IdTokenFor<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) account: &'a Account,
    /// The access token issued with it (its `at_hash`).
    pub(crate) access_token: Option<&'a str>,
    /// The sign-in request's `nonce`.
    pub(crate) nonce: Option<&'a str>,
}

/// A signed id_token with Google's claims, or `None` when no signing key could be made (an
/// RSA failure, logged).
pub(crate) fn id_token(ctx: &Ctx<'_>, about: &IdTokenFor<'_>) -> Option<String> {
    let iat = ctx.now_ms.div_euclid(1000);
    let claims = IdTokenClaims {
        iss: &ctx.config.issuer,
        azp: about.client_id,
        aud: about.client_id,
        sub: &about.account.sub,
        email: &about.account.email,
        email_verified: true,
        at_hash: about.access_token.map(at_hash),
        nonce: about.nonce,
        iat,
        exp: iat + ID_TOKEN_TTL_SECS,
    };
    match ctx.keys.with(|ring| ring.sign(&claims)) {
        Ok(token) => Some(token),
        Err(e) => {
            tracing::error!(error = %e, "mock-server cannot sign an id_token");
            None
        }
    }
}

#[derive(Serialize)]
struct DiscoveryDocument<'a> {
    issuer: &'a str,
    authorization_endpoint: String,
    device_authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    revocation_endpoint: String,
    jwks_uri: String,
    response_types_supported: [&'static str; 8],
    response_modes_supported: [&'static str; 3],
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: [&'static str; 1],
    scopes_supported: [&'static str; 3],
    token_endpoint_auth_methods_supported: [&'static str; 2],
    claims_supported: [&'static str; 11],
    code_challenge_methods_supported: [&'static str; 2],
    grant_types_supported: [&'static str; 4],
}

/// `GET /.well-known/openid-configuration`, `/oauth2/v3/certs` and `/oauth2/v1/certs`.
///
/// The document has Google's keys and values, its endpoints this mock's own URLs, its issuer
/// the configured one.
pub(crate) fn discovery(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    if !request.is("GET") {
        return Reply::method_not_allowed("GET");
    }
    let base = ctx.base_url;
    if request.path == CERTS_PATH || request.path == PEM_CERTS_PATH {
        let jwks = request.path == CERTS_PATH;
        return match ctx
            .keys
            .with(|ring| if jwks { ring.jwks() } else { ring.pem_map() })
        {
            Ok(body) => Reply::new(200, body)
                .header("content-type", wire::CONTENT_TYPE_JSON)
                .header("cache-control", CERTS_CACHE_CONTROL),
            Err(e) => {
                tracing::error!(error = %e, "mock-server has no signing key to publish");
                Reply::token_json(500, wire::INTERNAL_FAILURE_BODY.to_string())
                    .error(wire::INTERNAL_FAILURE)
            }
        };
    }
    let body = to_json(&DiscoveryDocument {
        issuer: &ctx.config.issuer,
        authorization_endpoint: format!("{base}{AUTHORIZE_PATH}"),
        device_authorization_endpoint: format!("{base}{DEVICE_CODE_PATH}"),
        token_endpoint: format!("{base}{TOKEN_PATH}"),
        userinfo_endpoint: format!("{base}{USERINFO_PATH}"),
        revocation_endpoint: format!("{base}{REVOKE_PATH}"),
        jwks_uri: format!("{base}{CERTS_PATH}"),
        response_types_supported: [
            "code",
            "token",
            "id_token",
            "code token",
            "code id_token",
            "token id_token",
            "code token id_token",
            "none",
        ],
        response_modes_supported: ["query", "fragment", "form_post"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        scopes_supported: ["openid", "email", "profile"],
        token_endpoint_auth_methods_supported: ["client_secret_post", "client_secret_basic"],
        claims_supported: [
            "aud",
            "email",
            "email_verified",
            "exp",
            "family_name",
            "given_name",
            "iat",
            "iss",
            "name",
            "picture",
            "sub",
        ],
        code_challenge_methods_supported: ["plain", "S256"],
        grant_types_supported: [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ],
    });
    Reply::new(200, body).header("content-type", wire::CONTENT_TYPE_JSON)
}

#[derive(Serialize)]
struct UserInfo<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
}

/// `GET /v1/userinfo` (and `/oauth2/v3/userinfo`) with a bearer token (or `access_token=`): the
/// account's claims, `email` only with the email scope, `name` only with the profile scope.
pub(crate) fn userinfo(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    if !(request.is("GET") || request.is("POST")) {
        return Reply::method_not_allowed("GET, POST");
    }
    let token = request
        .bearer_token()
        .or_else(|| request.param("access_token"));
    let Some(view) = token.and_then(|t| ctx.tokens.live_access(t, ctx.now_ms)) else {
        return Reply::new(401, wire::USERINFO_INVALID_BODY)
            .header("content-type", wire::CONTENT_TYPE_JSON)
            .header("www-authenticate", wire::API_WWW_AUTHENTICATE)
            .error(wire::INVALID_TOKEN);
    };
    let account = account_of(ctx, view.grant);
    let email = has_email_scope(view.scopes);
    let name = account.email.split('@').next().unwrap_or_default();
    let body = to_json(&UserInfo {
        sub: &account.sub,
        name: has_profile_scope(view.scopes).then_some(name),
        email: email.then_some(&*account.email),
        email_verified: email.then_some(true),
    });
    Reply::new(200, body).header("content-type", wire::CONTENT_TYPE_JSON)
}

#[derive(Serialize)]
struct AccessTokenInfo<'a> {
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

/// `GET /tokeninfo?access_token=…`, `?id_token=…`, or with `Authorization: Bearer …` (how
/// Node's `getTokenInfo` sends it); the same as a POST form. Every value is a string, as Google's.
pub(crate) fn tokeninfo(ctx: &mut Ctx<'_>, request: &Incoming) -> Reply {
    if !(request.is("GET") || request.is("POST")) {
        return Reply::method_not_allowed("GET, POST");
    }
    let invalid = || {
        Reply::token_json(400, wire::TOKENINFO_INVALID_BODY.to_string()).error(wire::INVALID_TOKEN)
    };
    if let Some(id_token) = request.param("id_token") {
        return id_token_info(ctx, id_token).unwrap_or_else(invalid);
    }
    let Some(token) = request
        .param("access_token")
        .or_else(|| request.bearer_token())
    else {
        return invalid();
    };
    let Some(view) = ctx.tokens.live_access(token, ctx.now_ms) else {
        return invalid();
    };
    let account = account_of(ctx, view.grant);
    let scope = view.scopes.join(" ");
    // Whole seconds, as `exp` is: `exp - expires_in` is the mock clock's current second.
    let exp = view.expires_at_ms.div_euclid(1000);
    let expires_in = exp - ctx.now_ms.div_euclid(1000);
    Reply::token_json(
        200,
        to_json(&AccessTokenInfo {
            azp: &view.grant.client_id,
            aud: &view.grant.client_id,
            sub: &account.sub,
            scope: &scope,
            exp: exp.to_string(),
            expires_in: expires_in.to_string(),
            email: &account.email,
            email_verified: "true",
            access_type: if view.grant.offline {
                "offline"
            } else {
                "online"
            },
        }),
    )
}

/// tokeninfo of an id_token this server signed and that has not expired on the mock clock: its
/// claims and header fields, every value a string.
fn id_token_info(ctx: &Ctx<'_>, id_token: &str) -> Option<Reply> {
    let claims = ctx.keys.with(|ring| ring.verify(id_token)).ok()??;
    let exp = claims.get("exp").and_then(serde_json::Value::as_i64)?;
    if ctx.now_ms.div_euclid(1000) >= exp {
        return None;
    }
    let header = JwtParts::split(id_token)?.header;
    let mut info = serde_json::Map::new();
    for (source, keys) in [
        (
            &claims,
            &[
                "iss",
                "azp",
                "aud",
                "sub",
                "email",
                "email_verified",
                "at_hash",
                "nonce",
                "iat",
                "exp",
            ][..],
        ),
        (&header, &["alg", "kid", "typ"][..]),
    ] {
        for key in keys {
            let value = match source.get(*key) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => continue,
                Some(other) => other.to_string(),
            };
            info.insert((*key).to_string(), value.into());
        }
    }
    Some(Reply::token_json(200, to_json(&info)))
}
