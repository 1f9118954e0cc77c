//! Native clients for the command-line probe and the upstream monitor: native
//! gRPC over HTTP/2 (tonic's channel), gRPC-Web binary and text over HTTP/1.1
//! (hyper with tonic-web's client layer), each cleartext or over TLS (rustls,
//! with mTLS), all behind the same [`Client`] core as the browser build.
//!
//! [`connect`] dials once before returning, so "cannot connect" (a refused port,
//! a failed TLS handshake, the connect timeout) is told apart from an RPC that
//! fails afterwards, as grpc-health-probe does.
//!
//! # Layout
//! - `connector`: hyper-util's TCP dialer under hyper-rustls, within the connect
//!   timeout; one dialer for every wire.
//! - `tls`: [`TlsSettings`], and the rustls client configuration built from them.
//! - `text`: gRPC-Web text (base64) on top of tonic-web's binary client.

mod connector;
mod text;
mod tls;

use std::{fmt, str::FromStr, time::Duration};

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy, rt::TokioExecutor};
use tonic::{client::Grpc, codec::CompressionEncoding, transport::Endpoint};
use tower::{ServiceBuilder, ServiceExt, util::BoxCloneSyncService};

use crate::{Client, Options};
use connector::ConnectTimeout;
pub use connector::{Connector, Stream, connector};
pub use text::BoxBody;
pub use tls::{TlsSettings, client_config, pem_certs, pem_key};

/// The one HTTP client type of every native request that is not native gRPC:
/// gRPC-Web, and (in the server) the plain HTTP probes, the alerts' webhooks and the
/// admin command. One type, so a binary holds one copy of hyper's client.
pub type HttpClient = legacy::Client<Connector, BoxBody>;

/// A pooled [`HttpClient`] dialing as [`connector`] does.
pub fn http_client(target: &Target, https: bool) -> Result<HttpClient, ConnectError> {
    Ok(pooled(connector(target, https)?))
}

fn pooled(dialer: Connector) -> HttpClient {
    legacy::Client::builder(TokioExecutor::new()).build(dialer)
}

/// A whole request body for [`HttpClient`].
pub fn full_body(bytes: impl Into<Bytes>) -> BoxBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Which wire a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Native gRPC over HTTP/2 (h2c, or h2 by ALPN over TLS).
    Grpc,
    /// gRPC-Web, binary (`application/grpc-web+proto`), over HTTP/1.1.
    GrpcWeb,
    /// gRPC-Web, text (`application/grpc-web-text`, base64), over HTTP/1.1.
    GrpcWebText,
}

impl Protocol {
    /// How a config file or a flag spells it: `grpc`, `grpc-web`, `grpc-web-text`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc-web",
            Self::GrpcWebText => "grpc-web-text",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(word: &str) -> Result<Self, String> {
        [Self::Grpc, Self::GrpcWeb, Self::GrpcWebText]
            .into_iter()
            .find(|p| p.as_str() == word)
            .ok_or_else(|| {
                format!("unknown protocol {word:?}: expected grpc, grpc-web or grpc-web-text")
            })
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// The wire.
    pub protocol: Protocol,
    /// TLS settings for an `https://` URL.
    pub tls: TlsSettings,
    /// How long to wait for TCP (and TLS) to be established.
    pub connect_timeout: Duration,
    /// A `user-agent` to send instead of the default.
    pub user_agent: Option<String>,
    /// Compress every request with gzip (tonic's compression), as grpc-health-probe's
    /// `-gzip` does. Gzip-compressed answers are taken either way.
    pub gzip: bool,
}

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The options do not make sense (bad URL, unreadable certificate...).
    #[error("{0}")]
    Invalid(String),
    /// The server could not be reached, or the TLS handshake failed.
    #[error("cannot connect to {url}: {reason}")]
    Unreachable {
        /// The target.
        url: String,
        /// What the dialer said.
        reason: String,
    },
    /// No connection (TCP, then TLS) within the connect timeout.
    #[error("cannot connect to {url}: {}", ConnectTimeout(*.after))]
    Timeout {
        /// The target.
        url: String,
        /// The connect timeout that passed.
        after: Duration,
    },
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Any of the native wires, as one service type for tonic's client.
pub type Channel = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    ChannelError,
>;

/// A failure below gRPC: the connection, HTTP, or gRPC-Web framing.
///
/// A named type rather than a bare `Box<dyn Error>`: tonic's client bounds the
/// channel's error by `Into<Box<dyn Error>>`, and with a boxed trait object as the
/// error that bound carries a lifetime which rustc, checking that an async task
/// holding a client call is `Send`, must prove for every lifetime ("implementation
/// of `From` is not general enough"). A type without lifetimes has nothing to
/// prove, so a task that awaits a client's calls can be `tokio::spawn`ed as is.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ChannelError(#[from] BoxError);

/// A native client.
pub type NativeClient = Client<Grpc<Channel>>;

/// Dials `target` once (so an unreachable server is a [`ConnectError`]) and returns a
/// client that reconnects by itself afterwards.
pub async fn connect(target: &Target, options: Options) -> Result<NativeClient, ConnectError> {
    build(target, options, true).await
}

/// A client of `target` that dials on its first call, and again when its connection
/// is lost: a failure to connect is that call's error (UNAVAILABLE). Clones of its
/// transport share its connection (native gRPC: one HTTP/2 connection, a stream per
/// call; gRPC-Web: hyper's pool of HTTP/1.1 connections).
pub async fn connect_lazy(target: &Target, options: Options) -> Result<NativeClient, ConnectError> {
    build(target, options, false).await
}

async fn build(
    target: &Target,
    options: Options,
    dial: bool,
) -> Result<NativeClient, ConnectError> {
    let uri = target_uri(target)?;
    let dialer = connector(target, uri.scheme() == Some(&http::uri::Scheme::HTTPS))?;
    let unreachable = |error: &(dyn std::error::Error + 'static)| match timed_out(error) {
        Some(after) => ConnectError::Timeout {
            url: target.url.clone(),
            after,
        },
        None => ConnectError::Unreachable {
            url: target.url.clone(),
            reason: error_chain(error),
        },
    };
    let channel: Channel = match target.protocol {
        Protocol::Grpc => {
            // The dialer does TLS; tonic, built without its own, takes `http://`.
            let plain = format!("http://{}", uri.authority().map_or("", |a| a.as_str()));
            let mut endpoint =
                Endpoint::from_shared(plain).map_err(|e| ConnectError::Invalid(e.to_string()))?;
            if let Some(agent) = &target.user_agent {
                endpoint = endpoint
                    .user_agent(agent.clone())
                    .map_err(|e| ConnectError::Invalid(format!("bad user agent: {e}")))?;
            }
            let channel = if dial {
                endpoint
                    .connect_with_connector(dialer)
                    .await
                    .map_err(|e| unreachable(&e))?
            } else {
                endpoint.connect_with_connector_lazy(dialer)
            };
            BoxCloneSyncService::new(channel.map_err(|e| ChannelError(e.into())))
        }
        Protocol::GrpcWeb | Protocol::GrpcWebText => {
            if dial {
                dialer
                    .clone()
                    .oneshot(uri.clone())
                    .await
                    .map_err(|e| unreachable(&*e))?;
            }
            let http = pooled(dialer);
            let text = target.protocol == Protocol::GrpcWebText;
            let agent = target.user_agent.clone();
            let service = ServiceBuilder::new()
                .map_request(move |mut request: http::Request<tonic::body::Body>| {
                    // tonic's client sends paths only; hyper needs the origin too.
                    let mut parts = uri.clone().into_parts();
                    parts.path_and_query = request.uri().path_and_query().cloned();
                    *request.uri_mut() = Uri::from_parts(parts).expect("a valid URI");
                    if let Some(agent) = &agent
                        && let Ok(value) = agent.parse()
                    {
                        request
                            .headers_mut()
                            .insert(http::header::USER_AGENT, value);
                    }
                    request
                })
                .map_response(|response: http::Response<_>| response.map(tonic::body::Body::new))
                .layer(tonic_web::GrpcWebClientLayer::new())
                .layer(text::TextLayer::new(text))
                .service(http)
                .map_err(ChannelError);
            BoxCloneSyncService::new(service)
        }
    };
    // Some servers compress every answer, asked or not (grpcio with a default
    // compression does): take them, whatever is sent.
    let mut grpc = Grpc::new(channel).accept_compressed(CompressionEncoding::Gzip);
    if target.gzip {
        grpc = grpc.send_compressed(CompressionEncoding::Gzip);
    }
    Client::new(grpc, options).map_err(|e| ConnectError::Invalid(e.to_string()))
}

/// The connect timeout, if that is what `error` (or one of its causes) is.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> Option<Duration> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(ConnectTimeout(after)) = error.downcast_ref() {
            return Some(*after);
        }
        cause = error.source();
    }
    None
}

/// The target's URL, which must be `http://` or `https://`.
pub fn target_uri(target: &Target) -> Result<Uri, ConnectError> {
    let uri: Uri = target
        .url
        .parse()
        .map_err(|e| ConnectError::Invalid(format!("bad address {:?}: {e}", target.url)))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.authority().is_some() => Ok(uri),
        _ => Err(ConnectError::Invalid(format!(
            "bad address {:?}: use http://HOST:PORT or https://HOST:PORT",
            target.url
        ))),
    }
}

/// An error and its causes on one line: "transport error: tcp connect error: Connection refused".
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
