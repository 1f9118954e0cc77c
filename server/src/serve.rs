//! The accept loop: HTTP/1.1 and HTTP/2 on one port, cleartext (h2c) or TLS,
//! with explicit limits, and a bounded graceful drain.
//!
//! hyper is driven directly (rather than through `tonic::transport::Server` or
//! `axum::serve`) because neither exposes every limit this server sets: the
//! HTTP/1.1 header-read timeout, HTTP/2 concurrent streams and a connection cap.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{
        conn::auto,
        graceful::{GracefulShutdown, Watcher},
    },
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::Semaphore,
};
use tokio_rustls::{TlsAcceptor, rustls::ServerConfig};

use crate::routes::App;

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Concurrent HTTP/2 streams per connection (each Watch holds one).
    pub max_concurrent_streams: u32,
    /// How long a client may take to send its HTTP/1.1 request headers (slowloris);
    /// the TLS handshake gets as long.
    pub header_read_timeout: Duration,
    /// Open connections at once; past it, new ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 1024,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
        }
    }
}

type Builder = auto::Builder<TokioExecutor>;

/// Serves `app` on `listener` (over TLS when `tls` is given) until `stop`
/// completes, then stops accepting and gives open connections up to `grace` to
/// finish; whatever is left is dropped.
pub async fn serve(
    listener: TcpListener,
    app: App,
    limits: &ConnectionLimits,
    tls: Option<Arc<ServerConfig>>,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams);
    let builder = Arc::new(builder);
    let tls = tls.map(TlsAcceptor::from);
    let handshake_timeout = limits.header_read_timeout;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let service = TowerToHyperService::new(app);

    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let (builder, service, watcher, tls) = (
            builder.clone(),
            service.clone(),
            graceful.watcher(),
            tls.clone(),
        );
        tokio::spawn(async move {
            match tls {
                None => serve_io(&builder, stream, service, watcher, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_io(&builder, stream, service, watcher, peer).await,
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!(?grace, "shutdown grace over; closing the connections left");
    }
}

async fn serve_io<I>(
    builder: &Builder,
    io: I,
    service: TowerToHyperService<App>,
    watcher: Watcher,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(error) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}
