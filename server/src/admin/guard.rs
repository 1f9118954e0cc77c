//! Who may call the admin API. It listens on loopback, but a browser on the same
//! machine runs pages from every site, and those can reach loopback too:
//!
//! - a "simple" cross-site request (a form POST, no preflight) carries an `Origin`
//!   or `Sec-Fetch-Site` that names another site: refused (403);
//! - DNS rebinding makes a page's own name resolve to 127.0.0.1, but its requests
//!   still carry that name in `Host`: only the address the API listens on, or a
//!   loopback name for its port, is accepted (403);
//! - a request that changes anything must be `content-type: application/json`,
//!   which no form can send and no cross-site `fetch` can send without a
//!   preflight this API never grants (415);
//! - with a token file, every request needs `Authorization: Bearer TOKEN`,
//!   compared in constant time (401).

use std::net::SocketAddr;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;

/// What the guard knows: where the API listens, and the token, if any.
#[derive(Debug, Clone)]
pub struct Guard {
    addr: SocketAddr,
    token: Option<String>,
}

impl Guard {
    /// A guard for the API listening on `addr`; `token` is required when given.
    pub fn new(addr: SocketAddr, token: Option<String>) -> Self {
        Self { addr, token }
    }

    /// Why `headers` may not make a `method` request, if they may not.
    fn refusal(&self, method: &Method, headers: &HeaderMap) -> Option<Response> {
        let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let host = value("host").unwrap_or("");
        if !self.is_own_host(host) {
            return Some(refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "Host {host:?} is not this admin API's address ({}); requests made through \
                     another name are refused",
                    self.addr
                ),
            ));
        }
        if let Some(token) = &self.token {
            let given = value("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
                let mut response = refuse(
                    StatusCode::UNAUTHORIZED,
                    "missing or wrong token: send Authorization: Bearer TOKEN with the token \
                     in --admin-token-file"
                        .into(),
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                return Some(response);
            }
        }
        let cross_site = value("origin").is_some_and(|origin| {
            !origin
                .strip_prefix("http://")
                .is_some_and(|o| self.is_own_host(o))
        }) || value("sec-fetch-site")
            .is_some_and(|s| s != "same-origin" && s != "none");
        if cross_site {
            return Some(refuse(
                StatusCode::FORBIDDEN,
                "requests from web pages of other sites are refused".into(),
            ));
        }
        let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let json = value("content-type").is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        });
        if changes && !json {
            return Some(refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "changes must be sent as content-type: application/json (no web form can send \
                 that, so no page on another site can change a status)"
                    .into(),
            ));
        }
        None
    }

    /// The address it listens on, or a loopback name for the same port.
    fn is_own_host(&self, host: &str) -> bool {
        let port = self.addr.port();
        let Some((name, host_port)) = host.rsplit_once(':') else {
            return false;
        };
        if host_port.parse() != Ok(port) {
            return false;
        }
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let ip = self.addr.ip();
        if ip.is_unspecified() {
            // Bound to every address (--admin-allow-remote): any name of this host
            // will do; the token is what protects it then.
            return true;
        }
        name.parse() == Ok(ip)
            || (ip.is_loopback()
                && (name.eq_ignore_ascii_case("localhost")
                    || name
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|a| a.is_loopback())))
    }
}

fn refuse(code: StatusCode, message: String) -> Response {
    (code, format!("{message}\n")).into_response()
}

/// The middleware: every request passes here first.
pub async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    match guard.refusal(request.method(), request.headers()) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    fn code(guard: &Guard, method: Method, pairs: &[(&str, &str)]) -> Option<StatusCode> {
        guard.refusal(&method, &headers(pairs)).map(|r| r.status())
    }

    #[test]
    fn only_its_own_host_same_site_json_and_the_token() {
        let guard = Guard::new("127.0.0.1:8081".parse().unwrap(), None);
        let json = ("content-type", "application/json");
        assert_eq!(
            code(&guard, Method::GET, &[("host", "127.0.0.1:8081")]),
            None
        );
        assert_eq!(
            code(&guard, Method::GET, &[("host", "localhost:8081")]),
            None
        );
        assert_eq!(
            code(&guard, Method::PUT, &[("host", "[::1]:8081"), json]),
            None
        );
        for host in ["evil.example:8081", "127.0.0.1:9999", "127.0.0.1", ""] {
            assert_eq!(
                code(&guard, Method::GET, &[("host", host)]),
                Some(StatusCode::FORBIDDEN),
                "{host}"
            );
        }
        let host = ("host", "127.0.0.1:8081");
        assert_eq!(
            code(
                &guard,
                Method::POST,
                &[host, json, ("origin", "https://evil.example")]
            ),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            code(
                &guard,
                Method::POST,
                &[host, json, ("sec-fetch-site", "cross-site")]
            ),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            code(
                &guard,
                Method::POST,
                &[host, ("content-type", "text/plain")]
            ),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        assert_eq!(
            code(
                &guard,
                Method::POST,
                &[host, json, ("origin", "http://127.0.0.1:8081")]
            ),
            None
        );

        let guard = Guard::new("127.0.0.1:8081".parse().unwrap(), Some("s3cret".into()));
        assert_eq!(
            code(&guard, Method::GET, &[host]),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            code(
                &guard,
                Method::GET,
                &[host, ("authorization", "Bearer s3cre")]
            ),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            code(
                &guard,
                Method::GET,
                &[host, ("authorization", "Bearer s3cret")]
            ),
            None
        );
    }
}
