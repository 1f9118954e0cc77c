//! healthweb's server: the gRPC health protocol (`grpc.health.v1.Health`: Check,
//! Watch, List), exactly as the spec says, on one port to every caller: native
//! gRPC over HTTP/2, gRPC-Web (binary and text, HTTP/1.1 and HTTP/2), a plain
//! `/healthz`, server reflection, and the static status page.
//!
//! # Starting a server
//! [`Settings`] says everything a server is; [`Server::new`] checks it whole and
//! loads what it names (TLS and config files) before anything binds;
//! [`Server::bind`] opens the ports, and [`Server::run`] serves them until a
//! [`CancellationToken`](tokio_util::sync::CancellationToken) is cancelled. The
//! `healthweb` binary and the integration tests both start servers this way.
//!
//! # Use inside your own server
//! [`HealthRegistry`] holds the statuses (`set`, `remove`, `shutdown`, `resume`,
//! as grpc-go's health server); [`HealthService`] is the generated `Health` trait
//! over it, ready for `tonic::service::Routes` or any tonic server.
//!
//! # Layout
//! - [`settings`]: [`Settings`], and what is wrong with them.
//! - [`server`]: [`Server`]: builds every part from the settings, then runs them.
//! - [`registry`]: the statuses and their watch channels.
//! - [`health`]: Check, Watch, List; [`statuses`]: every service on one stream
//!   (WatchAll).
//! - [`routes`]: which request goes where; [`web`]: `/healthz`, `/upstreams`, the
//!   page; [`cors`]: which other origins may call.
//! - [`serve`]: the accept loop, every connection's clock and limits, the bounded
//!   drain; [`deadline`]: every gRPC call's clock.
//! - [`config`]: `--service` flags and the TOML file, reloaded on SIGHUP.
//! - [`upstream`], [`monitor`]: `[[upstream]]` entries and the tasks that watch them.
//! - [`history`]: every status change, kept in SQLite or PostgreSQL, and the
//!   History service; [`fleet`]: replicas sharing one PostgreSQL;
//!   [`badge`]: status badges; [`metrics`]: `/metrics`.
//! - [`alert`]: alert receivers and rules, the engine fed by the registry, and
//!   delivery from the store's outbox.
//! - [`admin`]: the admin HTTP API.
//! - [`status`]: the status words people type.
//! - [`tls`]: the server's rustls configuration, mTLS included.

pub mod admin;
pub mod alert;
pub mod badge;
pub mod config;
pub mod cors;
pub mod deadline;
pub mod fleet;
pub mod health;
pub mod history;
pub mod metrics;
pub mod monitor;
pub mod registry;
pub mod routes;
pub mod serve;
pub mod server;
pub mod settings;
pub mod status;
pub mod statuses;
pub mod tls;
pub mod upstream;
pub mod web;

pub use health::{HealthLimits, HealthService};
pub use registry::HealthRegistry;
pub use server::{Listeners, Reloader, Server};
pub use settings::{ConnectionLimits, Settings, SettingsError};
