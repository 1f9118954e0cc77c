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
//! - `connector`: TCP with a timeout, then TLS when asked; one dialer for both wires.
//! - `tls`: the rustls client configuration from the probe's options.
//! - `text`: gRPC-Web text (base64) on top of tonic-web's binary client.

mod connector;
mod text;
mod tls;

use std::{path::PathBuf, time::Duration};

use healthweb_proto::pb::health_client::HealthClient;
use http::Uri;
use hyper_util::{
    client::legacy,
    rt::{TokioExecutor, TokioIo},
};
use tonic::transport::Endpoint;
use tower::{ServiceBuilder, ServiceExt, util::BoxCloneSyncService};

use crate::{Client, Options};
use connector::Connector;
pub use tls::pem_certs;

/// Which wire a native client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Native gRPC over HTTP/2 (h2c, or h2 by ALPN over TLS).
    Grpc,
    /// gRPC-Web, binary (`application/grpc-web+proto`), over HTTP/1.1.
    GrpcWeb,
    /// gRPC-Web, text (`application/grpc-web-text`, base64), over HTTP/1.1.
    GrpcWebText,
}

/// TLS settings; used when the target URL is `https://`.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// CA bundle (PEM) to trust instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM), for mTLS; needs `key`.
    pub cert: Option<PathBuf>,
    /// Client private key (PEM), for mTLS; needs `cert`.
    pub key: Option<PathBuf>,
    /// The name to verify the server's certificate against, instead of the URL's host.
    pub server_name: Option<String>,
    /// Accept any server certificate. For tests and emergencies only.
    pub no_verify: bool,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// The wire.
    pub protocol: Protocol,
    /// TLS settings for an `https://` URL.
    pub tls: TlsOptions,
    /// How long to wait for TCP (and TLS) to be established.
    pub connect_timeout: Duration,
    /// A `user-agent` to send instead of the default.
    pub user_agent: Option<String>,
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
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Any of the native wires, as one service type for the generated client.
pub type Channel = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    BoxError,
>;

/// A native client.
pub type NativeClient = Client<HealthClient<Channel>>;

/// Dials `target` once (so an unreachable server is a [`ConnectError`]) and returns a
/// client that reconnects by itself afterwards.
pub async fn connect(target: &Target, options: Options) -> Result<NativeClient, ConnectError> {
    let uri: Uri = target
        .url
        .parse()
        .map_err(|e| ConnectError::Invalid(format!("bad address {:?}: {e}", target.url)))?;
    let tls = match uri.scheme_str() {
        Some("https") => Some(tls::client_config(&target.tls, target.protocol)?),
        Some("http") => None,
        _ => {
            return Err(ConnectError::Invalid(format!(
                "bad address {:?}: use http://HOST:PORT or https://HOST:PORT",
                target.url
            )));
        }
    };
    let connector = Connector::new(tls, target.tls.server_name.clone(), target.connect_timeout);
    let unreachable = |reason: String| ConnectError::Unreachable {
        url: target.url.clone(),
        reason,
    };
    let channel: Channel = match target.protocol {
        Protocol::Grpc => {
            // TLS is the connector's business; tonic must not look for its own.
            let plain = format!("http://{}", uri.authority().map_or("", |a| a.as_str()));
            let mut endpoint =
                Endpoint::from_shared(plain).map_err(|e| ConnectError::Invalid(e.to_string()))?;
            if let Some(agent) = &target.user_agent {
                endpoint = endpoint
                    .user_agent(agent.clone())
                    .map_err(|e| ConnectError::Invalid(format!("bad user agent: {e}")))?;
            }
            let channel = endpoint
                .connect_with_connector(connector)
                .await
                .map_err(|e| unreachable(error_chain(&e)))?;
            BoxCloneSyncService::new(channel.map_err(BoxError::from))
        }
        Protocol::GrpcWeb | Protocol::GrpcWebText => {
            connector
                .dial(&uri)
                .await
                .map_err(|e| unreachable(error_chain(&*e)))?;
            let http = legacy::Client::builder(TokioExecutor::new()).build(connector);
            let text = target.protocol == Protocol::GrpcWebText;
            let agent = target.user_agent.clone();
            let service = ServiceBuilder::new()
                .map_request(move |mut request: http::Request<tonic::body::Body>| {
                    // The generated client sends paths only; hyper needs the origin too.
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
                .map_err(BoxError::from);
            BoxCloneSyncService::new(service)
        }
    };
    Client::new(HealthClient::new(channel), options)
        .map_err(|e| ConnectError::Invalid(e.to_string()))
}

/// Plain HTTP: `GET` of `path` on the target, through the same dialer and TLS
/// settings; returns the status code. For upstreams that are not gRPC.
pub async fn http_status(target: &Target, path: &str, timeout: Duration) -> Result<u16, String> {
    let uri: Uri = format!("{}{path}", target.url.trim_end_matches('/'))
        .parse()
        .map_err(|e| format!("bad address {:?}: {e}", target.url))?;
    let tls = match uri.scheme_str() {
        Some("https") => {
            Some(tls::client_config(&target.tls, Protocol::GrpcWeb).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let connector = Connector::new(tls, target.tls.server_name.clone(), timeout);
    let get = async {
        let io = connector.dial(&uri).await?;
        let (mut send, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(connection);
        let mut request = http::Request::get(uri.clone());
        if let Some(authority) = uri.authority() {
            request = request.header(http::header::HOST, authority.as_str());
        }
        if let Some(agent) = &target.user_agent {
            request = request.header(http::header::USER_AGENT, agent);
        }
        let response = send
            .send_request(request.body(http_body_util::Empty::<bytes::Bytes>::new())?)
            .await?;
        Ok::<_, BoxError>(response.status().as_u16())
    };
    match tokio::time::timeout(timeout, get).await {
        Ok(Ok(code)) => Ok(code),
        Ok(Err(error)) => Err(error_chain(&*error)),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// An error and its causes on one line: "transport error: tcp connect error: Connection refused".
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
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
