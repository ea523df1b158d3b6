//! Who may use `serve`'s admin API: a Host naming the listener, a JSON content type on every
//! request that changes something, and the bearer token when `--admin-token` is set.
//!
//! The admin API hands out refresh tokens and resets the mock, so a web page the tester happens
//! to open must not be able to use it:
//! - a cross-origin page can send a "simple" request without a CORS preflight: a POST with a
//!   `text/plain` or form body, or none. Requiring `Content-Type: application/json` on
//!   everything but GET and HEAD forces the preflight, which the admin API never grants;
//! - DNS rebinding makes a page's own origin resolve to the listener: the browser then sends
//!   the attacker's name as `Host`. Only names of the listener (its address, `localhost` for a
//!   loopback or wildcard listener) and names given with `--admin-allow-host` are accepted;
//! - on a listener other machines can reach, `--admin-token` (or `OAUTHTEST_ADMIN_TOKEN`)
//!   requires `Authorization: Bearer <token>`.
//!
//! # Security
//! The token is compared through SHA-256 digests (no early exit on the first differing byte)
//! and never printed: not in answers, logs or `Debug`.

use http::{header, HeaderMap, Method, StatusCode};
use mock_server::Request;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The content type every admin request but GET and HEAD must carry.
const JSON: &str = "application/json";

/// What the admin API accepts.
pub struct AdminGuard {
    /// The listener's address; `None` accepts loopback names on any port (a front end without
    /// a socket, as in the fuzz harness).
    listener: Option<SocketAddr>,
    /// `--admin-allow-host` values, lower case: `name` (any port) or `name:port`.
    allowed_hosts: Vec<String>,
    /// SHA-256 of `--admin-token`.
    token_digest: Option<[u8; 32]>,
}

impl fmt::Debug for AdminGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminGuard")
            .field("listener", &self.listener)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("token", &self.token_digest.map(|_| "[redacted]"))
            .finish()
    }
}

impl Default for AdminGuard {
    /// Loopback names on any port, no token.
    fn default() -> Self {
        Self {
            listener: None,
            allowed_hosts: Vec::new(),
            token_digest: None,
        }
    }
}

/// Why an admin request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `error` code of the answer.
    pub code: &'static str,
    /// What was wrong and how to fix it.
    pub message: String,
}

impl AdminGuard {
    /// The guard of a listener on `listener`, accepting also `allowed_hosts` and requiring
    /// `token` when given.
    pub fn new(
        listener: SocketAddr,
        allowed_hosts: &[String],
        token: Option<&SecretString>,
    ) -> Self {
        Self {
            listener: Some(listener),
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            token_digest: token.map(|t| digest(t.expose_secret())),
        }
    }

    /// Whether a bearer token is required.
    pub fn requires_token(&self) -> bool {
        self.token_digest.is_some()
    }

    /// Checks one admin request: Host, then token, then content type.
    ///
    /// # Errors
    /// [`Refused`] naming what was wrong: 403 for a Host that does not name this server, 401
    /// for a missing or wrong token, 415 for a body that is not declared JSON.
    pub fn check(&self, request: &Request) -> Result<(), Refused> {
        self.check_host(&request.headers, request.local_addr)?;
        self.check_token(&request.headers)?;
        check_content_type(&request.method, &request.headers)
    }

    fn check_host(&self, headers: &HeaderMap, local: Option<SocketAddr>) -> Result<(), Refused> {
        let forbidden = |message: String| Refused {
            status: StatusCode::FORBIDDEN,
            code: "forbidden_host",
            message,
        };
        let Some(value) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
            return Err(forbidden(
                "admin requests must carry a Host header naming this server".to_owned(),
            ));
        };
        let shown: String = value.chars().take(100).collect();
        let Ok(authority) = value.trim().parse::<http::uri::Authority>() else {
            return Err(forbidden(format!("Host {shown:?} is not a host name")));
        };
        let name = authority.host().to_ascii_lowercase();
        let port = authority.port_u16();
        if self
            .allowed_hosts
            .iter()
            .any(|allowed| match allowed.rsplit_once(':') {
                Some((host, p)) if !allowed.ends_with(']') && p.parse::<u16>().is_ok() => {
                    *host == name && port.map(|x| x.to_string()).as_deref() == Some(p)
                }
                _ => *allowed == name,
            })
        {
            return Ok(());
        }
        if self.names_listener(&name, port.unwrap_or(80), local) {
            return Ok(());
        }
        Err(forbidden(format!(
            "Host {shown:?} does not name this server; use its address{} or allow the name with --admin-allow-host",
            self.listener.map(|l| format!(" ({l})")).unwrap_or_default()
        )))
    }

    /// Whether `name:port` names the listener.
    fn names_listener(&self, name: &str, port: u16, local: Option<SocketAddr>) -> bool {
        let (bound, listening_port) = match self.listener {
            Some(l) => (l.ip(), Some(l.port())),
            None => (IpAddr::from([127, 0, 0, 1]), None),
        };
        if listening_port.is_some_and(|p| p != port) {
            return false;
        }
        let ip: Option<IpAddr> = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok();
        let local_names = bound.is_loopback() || bound.is_unspecified();
        match ip {
            None => local_names && name == "localhost",
            Some(ip) if bound.is_unspecified() => match local {
                Some(local) => ip == local.ip(),
                // No socket to ask: any address of this machine may be meant.
                None => true,
            },
            Some(ip) => ip == bound || (self.listener.is_none() && ip.is_loopback()),
        }
    }

    fn check_token(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let Some(expected) = &self.token_digest else {
            return Ok(());
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| digest(token.trim()));
        match presented {
            Some(given) if constant_time_eq(&given, expected) => Ok(()),
            Some(_) => Err(Refused {
                status: StatusCode::UNAUTHORIZED,
                code: "unauthorized",
                message: "the admin token presented is wrong".to_owned(),
            }),
            None => Err(Refused {
                status: StatusCode::UNAUTHORIZED,
                code: "unauthorized",
                message: "this server requires its admin token: send Authorization: Bearer <the --admin-token value>".to_owned(),
            }),
        }
    }
}

fn check_content_type(method: &Method, headers: &HeaderMap) -> Result<(), Refused> {
    if matches!(*method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if declared.as_deref() == Some(JSON) {
        return Ok(());
    }
    let shown = declared.map_or_else(|| "none".to_owned(), |d| format!("{d:?}"));
    Err(Refused {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: "unsupported_media_type",
        message: format!(
            "admin {method} requests must carry Content-Type: {JSON} (got {shown}), even with an empty body"
        ),
    })
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The warning `serve` prints when its admin API is reachable from other machines without a
/// token, or `None`.
pub fn exposure_warning(host: IpAddr, token: bool) -> Option<String> {
    (!host.is_loopback() && !token).then(|| {
        format!(
            "--host {host} makes the admin API (/__admin: mint tokens, reset the mock) reachable from other machines without a token; set --admin-token or OAUTHTEST_ADMIN_TOKEN"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn request(method: Method, headers: &[(&str, &str)]) -> Request {
        let mut request = Request::new(method, "/__admin/reset".parse().expect("uri"));
        for (name, value) in headers {
            request = request.with_header(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        request
    }

    fn guard(listener: &str, allowed: &[&str], token: Option<&str>) -> AdminGuard {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        let token = token.map(|t| SecretString::from(t.to_owned()));
        AdminGuard::new(listener.parse().expect("address"), &allowed, token.as_ref())
    }

    const JSON_POST: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn hosts_naming_a_loopback_listener_pass_and_other_names_are_refused() {
        let g = guard("127.0.0.1:8080", &[], None);
        for host in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080"] {
            assert_eq!(
                g.check(&request(Method::POST, &[("host", host), JSON_POST])),
                Ok(()),
                "{host}"
            );
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1:9090",
            "localhost",
            "10.0.0.1:8080",
        ] {
            let refused = g
                .check(&request(Method::POST, &[("host", host), JSON_POST]))
                .expect_err(host);
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{host}");
            assert!(
                refused.message.contains("--admin-allow-host"),
                "{}",
                refused.message
            );
        }
        let refused = g.check(&request(Method::GET, &[])).expect_err("no Host");
        assert_eq!(refused.code, "forbidden_host");
    }

    #[test]
    fn allowed_hosts_pass_with_any_port_or_the_one_given() {
        let g = guard(
            "127.0.0.1:8080",
            &["mock.internal", "Proxy.Example:443"],
            None,
        );
        assert!(g
            .check(&request(Method::GET, &[("host", "mock.internal:1234")]))
            .is_ok());
        assert!(g
            .check(&request(Method::GET, &[("host", "proxy.example:443")]))
            .is_ok());
        assert!(g
            .check(&request(Method::GET, &[("host", "proxy.example:80")]))
            .is_err());
        assert!(g
            .check(&request(Method::GET, &[("host", "other.example")]))
            .is_err());
    }

    #[test]
    fn a_wildcard_listener_accepts_the_address_the_connection_arrived_on() {
        let g = guard("0.0.0.0:8080", &[], None);
        let local: SocketAddr = "192.168.1.5:8080".parse().expect("address");
        let at = |host: &str| request(Method::GET, &[("host", host)]).with_local_addr(local);
        assert!(g.check(&at("192.168.1.5:8080")).is_ok());
        assert!(g.check(&at("localhost:8080")).is_ok());
        assert!(g.check(&at("192.168.1.6:8080")).is_err());
        assert!(g.check(&at("rebound.evil.example:8080")).is_err());
    }

    #[test]
    fn changing_requests_must_declare_json_and_reads_need_not() {
        let g = guard("127.0.0.1:8080", &[], None);
        let host = ("host", "127.0.0.1:8080");
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let mut headers = vec![host];
            if let Some(ct) = content_type {
                headers.push(("content-type", ct));
            }
            let refused = g
                .check(&request(Method::POST, &headers))
                .expect_err("not JSON");
            assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert!(
                refused.message.contains("application/json"),
                "{}",
                refused.message
            );
        }
        assert!(g
            .check(&request(
                Method::POST,
                &[host, ("content-type", "Application/JSON; charset=utf-8")]
            ))
            .is_ok());
        assert!(g.check(&request(Method::GET, &[host])).is_ok());
    }

    #[test]
    fn a_token_is_required_when_set_and_never_shown() {
        let g = guard("127.0.0.1:8080", &[], Some("s3cret-admin-token"));
        let host = ("host", "127.0.0.1:8080");
        let missing = g
            .check(&request(Method::GET, &[host]))
            .expect_err("no token");
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
        let wrong = g
            .check(&request(
                Method::GET,
                &[host, ("authorization", "Bearer guess")],
            ))
            .expect_err("wrong token");
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(g
            .check(&request(
                Method::GET,
                &[host, ("authorization", "bearer s3cret-admin-token")]
            ))
            .is_ok());
        for shown in [
            format!("{g:?}"),
            format!("{missing:?}"),
            format!("{wrong:?}"),
        ] {
            assert!(!shown.contains("s3cret-admin-token"), "{shown}");
        }
        assert!(guard("127.0.0.1:8080", &[], None)
            .check(&request(Method::GET, &[host]))
            .is_ok());
    }

    #[test]
    fn only_a_reachable_listener_without_a_token_is_warned_about() {
        let any: IpAddr = "0.0.0.0".parse().expect("ip");
        let warning = exposure_warning(any, false).expect("a warning");
        assert!(warning.contains("--admin-token"), "{warning}");
        assert_eq!(exposure_warning(any, true), None);
        assert_eq!(
            exposure_warning("127.0.0.1".parse().expect("ip"), false),
            None
        );
        assert_eq!(exposure_warning("::1".parse().expect("ip"), false), None);
        assert!(exposure_warning("192.168.1.5".parse().expect("ip"), false).is_some());
    }
}
