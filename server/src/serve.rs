//! The accept loop: HTTP/1.1 and cleartext HTTP/2 on one port, with explicit
//! limits, and a bounded graceful drain.
//!
//! hyper is driven directly (rather than through `tonic::transport::Server` or
//! `axum::serve`) because neither exposes every limit this server sets: the
//! HTTP/1.1 header-read timeout, HTTP/2 concurrent streams and a connection cap.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};

use crate::routes::App;

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Concurrent HTTP/2 streams per connection (each Watch holds one).
    pub max_concurrent_streams: u32,
    /// How long a client may take to send its HTTP/1.1 request headers (slowloris).
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

/// Serves `app` on `listener` until `stop` completes, then stops accepting and
/// gives open connections up to `grace` to finish; whatever is left is dropped.
pub async fn serve(
    listener: TcpListener,
    app: App,
    limits: &ConnectionLimits,
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
        let connection = builder
            .serve_connection(TokioIo::new(stream), service.clone())
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                log_connection_error(peer, &*error);
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

fn log_connection_error(peer: SocketAddr, error: &(dyn std::error::Error + 'static)) {
    tracing::debug!(%peer, %error, "connection ended with an error");
}
