//! Which other origins' pages may call this server, as `tower-http`'s CORS layer.
//!
//! Same-origin only unless origins are named; `*` only when given explicitly.
//! Every origin and header name is checked when the server is built, so a typo
//! is refused before the port is announced rather than on the first request.

use axum::http::{HeaderName, HeaderValue, Method, Uri};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Origins allowed to call from other pages, and the extra headers they may send.
#[derive(Debug, Clone, Default)]
pub struct CorsSettings {
    /// `scheme://host[:port]` origins, or `*` for any; empty: same-origin only.
    pub origins: Vec<String>,
    /// Request headers allowed from other origins, on top of the gRPC-Web ones.
    pub allow_headers: Vec<String>,
}

/// A value CORS cannot use.
#[derive(Debug, thiserror::Error)]
pub enum CorsError {
    /// Not `*` and not an origin.
    #[error(
        "--cors-origin {0:?} is not an origin: write scheme://host[:port] with no path \
         (for example https://app.example.com), or * for any"
    )]
    Origin(String),
    /// Not an HTTP header name.
    #[error("--cors-allow-header {0:?} is not a header name")]
    Header(String),
}

/// What browsers on other origins may always send to a gRPC-Web server.
const GRPC_WEB_HEADERS: [&str; 5] = [
    "content-type",
    "authorization",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
];

/// What a gRPC-Web client must be able to read in the answer.
const EXPOSED: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

impl CorsSettings {
    /// The layer, or `None` when no other origin may call: same-origin pages need
    /// no CORS headers, so the layer would only cost (8-14% of a Check).
    pub fn layer(&self) -> Result<Option<CorsLayer>, CorsError> {
        // Checked even when no origin is named, so a typo never waits for one.
        let extra = self
            .allow_headers
            .iter()
            .map(|name| {
                name.parse::<HeaderName>()
                    .map_err(|_| CorsError::Header(name.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.origins.is_empty() {
            return Ok(None);
        }
        let origins = if self.origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(
                self.origins
                    .iter()
                    .map(|o| origin(o))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        };
        let allow: Vec<HeaderName> = GRPC_WEB_HEADERS
            .iter()
            .map(|name| HeaderName::from_static(name))
            .chain(extra)
            .collect();
        Ok(Some(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
                .allow_headers(allow)
                .expose_headers(EXPOSED.map(HeaderName::from_static))
                .max_age(std::time::Duration::from_secs(3600)),
        ))
    }
}

/// An origin as browsers send it in `Origin`: a scheme, a host, maybe a port, nothing else.
fn origin(text: &str) -> Result<HeaderValue, CorsError> {
    let bad = || CorsError::Origin(text.to_owned());
    let uri: Uri = text.parse().map_err(|_| bad())?;
    let authority = uri.authority().ok_or_else(bad)?;
    let bare = uri.scheme().is_some()
        && !authority.as_str().contains('@')
        && !authority.host().is_empty()
        && uri
            .path_and_query()
            .is_none_or(|p| matches!(p.as_str(), "" | "/"))
        && !text.ends_with('/');
    if !bare {
        return Err(bad());
    }
    HeaderValue::from_str(text).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in [
            "https://app.example.com",
            "http://127.0.0.1:8080",
            "chrome-extension://abc",
        ] {
            assert!(origin(good).is_ok(), "{good}");
        }
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://user@app.example.com",
            "https://app.example.com?x=1",
            "",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
        let settings = CorsSettings {
            origins: vec!["*".into()],
            allow_headers: vec!["bad header".into()],
        };
        assert!(matches!(settings.layer(), Err(CorsError::Header(_))));
        assert!(CorsSettings::default().layer().unwrap().is_none());
    }
}
