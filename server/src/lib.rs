//! healthweb's server: the gRPC health protocol (`grpc.health.v1.Health`: Check,
//! Watch, List), exactly as the spec says, on one port to every caller: native
//! gRPC over HTTP/2, gRPC-Web (binary and text, HTTP/1.1 and HTTP/2), a plain
//! `/healthz`, server reflection, and the static status page.
//!
//! # Use inside your own server
//! [`HealthRegistry`] holds the statuses (`set`, `remove`, `shutdown`, `resume`,
//! as grpc-go's health server); [`HealthService`] is the generated `Health` trait
//! over it, ready for `tonic::service::Routes` or any tonic server; [`run`] serves
//! everything on a listener until a future completes.
//!
//! # Layout
//! - [`registry`]: the statuses and their watch channels.
//! - [`health`]: Check, Watch, List.
//! - [`routes`]: which request goes where; `/healthz`, static files, CORS.
//! - [`serve`]: the accept loop, connection limits, the bounded drain.
//! - [`config`]: `--service` flags and the TOML file, reloaded on SIGHUP.
//! - [`upstream`], [`monitor`]: `[[upstream]]` entries and the tasks that watch them.
//! - [`admin`]: the admin HTTP API and its client.
//! - [`probe`]: `healthweb check`, the command-line probe.
//! - [`status`]: the status words people type.
//! - [`signals`]: SIGTERM, ctrl-c and SIGHUP.
//! - [`tls`]: rustls for https and gRPC over TLS, mTLS.

pub mod admin;
pub mod config;
pub mod health;
pub mod monitor;
pub mod probe;
pub mod registry;
pub mod routes;
pub mod serve;
pub mod signals;
pub mod status;
pub mod tls;
pub mod upstream;

use std::{future::Future, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::watch};

pub use health::{HealthLimits, HealthService};
pub use registry::HealthRegistry;
pub use routes::{RouteError, RouteOptions};
pub use serve::ConnectionLimits;

/// Everything [`run`] needs besides the listener and the registry.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Routes, CORS and message limits.
    pub routes: RouteOptions,
    /// Connection limits.
    pub connections: ConnectionLimits,
    /// How long open connections get to finish once `stop` completes.
    pub shutdown_grace: Duration,
    /// TLS for the port; cleartext (h2c and HTTP/1.1) when absent.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            routes: RouteOptions::default(),
            connections: ConnectionLimits::default(),
            shutdown_grace: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// Serves healthweb on `listener` until `stop` completes. Then every service
/// turns NOT_SERVING (watchers receive it), open Watch streams end with
/// UNAVAILABLE, and connections get `shutdown_grace` to finish before they are
/// dropped.
pub async fn run(
    listener: TcpListener,
    registry: HealthRegistry,
    options: &ServerOptions,
    stop: impl Future<Output = ()>,
) -> Result<(), RouteError> {
    let (draining_tx, draining) = watch::channel(false);
    let app = routes::app(registry.clone(), &options.routes, draining)?;
    let stop = async move {
        stop.await;
        registry.shutdown();
        draining_tx.send_replace(true);
    };
    serve::serve(
        listener,
        app,
        &options.connections,
        options.tls.clone(),
        stop,
        options.shutdown_grace,
    )
    .await;
    Ok(())
}
