//! One dialer for every native wire: hyper-util's TCP connector under
//! hyper-rustls, bounded by the connect timeout, with errors that say which step
//! failed (the TCP connect, the TLS handshake, or the clock).

use std::{error::Error as StdError, io, time::Duration};

use http::{Uri, uri::Scheme};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, MaybeHttpsStream};
use hyper_util::{client::legacy::connect::HttpConnector, rt::TokioIo};
use rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
use tokio::net::TcpStream;
use tower::{ServiceBuilder, util::BoxCloneSyncService};

use super::{BoxError, ConnectError, Protocol, Target, tls};

/// A connection, with or without TLS.
pub type Stream = MaybeHttpsStream<TokioIo<TcpStream>>;

/// Dials a target: a `tower::Service<Uri>`, as tonic's channel and hyper-util's
/// client both want.
pub type Connector = BoxCloneSyncService<Uri, Stream, BoxError>;

/// The dialer for `target`; `https` says whether it speaks TLS.
pub fn connector(target: &Target, https: bool) -> Result<Connector, ConnectError> {
    let config = if https {
        tls::client_config(&target.tls)?
    } else {
        // hyper-rustls wants a configuration even for cleartext; it never uses this one.
        ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnectError::Invalid(e.to_string()))?
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth()
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let builder = HttpsConnector::<HttpConnector>::builder()
        .with_tls_config(config)
        .https_or_http();
    let builder = match &target.tls.server_name {
        Some(name) => {
            let name = ServerName::try_from(name.clone())
                .map_err(|e| ConnectError::Invalid(format!("bad TLS server name {name:?}: {e}")))?;
            builder.with_server_name_resolver(FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    // ALPN: h2 for native gRPC; none (HTTP/1.1) for gRPC-Web.
    let dialer = match target.protocol {
        Protocol::Grpc => builder.enable_http2().wrap_connector(http),
        Protocol::GrpcWeb | Protocol::GrpcWebText => builder.enable_http1().wrap_connector(http),
    };
    let scheme = if https { Scheme::HTTPS } else { Scheme::HTTP };
    let timeout = target.connect_timeout;
    let service = ServiceBuilder::new()
        .map_err(move |error| explain(error, timeout))
        // tonic hands its connector `http://` URIs (it has no TLS of its own here):
        // the target's scheme decides.
        .map_request(move |uri: Uri| with_scheme(uri, scheme.clone()))
        .timeout(timeout)
        .service(dialer);
    Ok(BoxCloneSyncService::new(service))
}

fn with_scheme(uri: Uri, scheme: Scheme) -> Uri {
    let mut parts = uri.into_parts();
    parts.scheme = Some(scheme);
    Uri::from_parts(parts).expect("a URI with a scheme and an authority")
}

/// The connect timeout passed before the connection was made.
#[derive(Debug, thiserror::Error)]
#[error("no connection within {} ms (connect timeout)", .0.as_millis())]
pub struct ConnectTimeout(pub Duration);

/// Names the step that failed: the timer, or the TLS handshake (whose rustls error
/// hyper-rustls wraps in two `io::Error`s that hide it from `source()`).
fn explain(error: BoxError, timeout: Duration) -> BoxError {
    if error.is::<tower::timeout::error::Elapsed>() {
        return ConnectTimeout(timeout).into();
    }
    match tls_error(&*error) {
        Some(tls) => format!("TLS handshake failed: {tls}").into(),
        None => error,
    }
}

fn tls_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(inner) = error
        .downcast_ref::<io::Error>()
        .and_then(io::Error::get_ref)
    {
        return tls_error(inner);
    }
    error.source().and_then(tls_error)
}
