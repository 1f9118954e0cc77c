//! The composition root: [`Server`] builds every part from [`Settings`] and runs
//! them, for the `healthweb` binary and the tests alike (mini-redis's
//! `server::run(listener, shutdown)` is the model).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use healthweb_server::{Server, Settings};
//! use tokio_util::sync::CancellationToken;
//!
//! let server = Server::new(Settings::default()).await?; // checks and loads; binds nothing
//! let listeners = server.bind().await?;
//! let shutdown = CancellationToken::new();
//! server.run(listeners, shutdown.clone()).await; // until shutdown.cancel()
//! # Ok(()) }
//! ```
//!
//! Shutting down: once the token is cancelled every service turns NOT_SERVING
//! (watchers receive it) and, for the drain delay, the server goes on answering
//! (a lame duck). Then it drains: open Watch streams end with UNAVAILABLE, no
//! connection is accepted, the admin API and the upstream monitor stop, and open
//! connections get the shutdown grace before they are dropped. With replicas
//! ([`crate::fleet`]), the leases go back to the fleet as the shutdown begins.

use std::{
    collections::BTreeSet,
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    admin,
    alert::{AlertSettings, Alerting, Alerts},
    config::{ConfigError, Configured},
    fleet::{self, Fleet},
    history::{
        History, Location, Recorder, StoreState,
        recorder::{Scope, Writer, instance_id},
    },
    metrics::Metrics,
    monitor::Monitor,
    registry::{HealthRegistry, Observer},
    routes::{self, App},
    serve,
    settings::{ConnectionLimits, Settings, SettingsError},
    tls,
    upstream::UpstreamConfig,
    web::{Instance, WebState},
};

/// A server, built and checked, not yet listening.
pub struct Server {
    listen: SocketAddr,
    admin_listen: Option<SocketAddr>,
    registry: HealthRegistry,
    app: App,
    /// The admin API's token, when `--admin-token-file` names one.
    admin_token: Option<String>,
    tls: Option<Arc<rustls::ServerConfig>>,
    connections: ConnectionLimits,
    drain_delay: Duration,
    shutdown_grace: Duration,
    /// Writes history; stopped (with a last write) when the server is.
    writer: Writer,
    reloader: Reloader,
    upstreams: Vec<UpstreamConfig>,
    /// With history in PostgreSQL: what the fleet's tasks start with.
    fleet: Option<fleet::Parts>,
    /// The alert engine and senders, with the store they keep their state in.
    alerts: Alerting,
}

/// The sockets a [`Server`] serves: the one port, and the admin API's.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC, gRPC-Web, `/healthz` and the page.
    pub main: TcpListener,
    /// The admin API, when the settings have one.
    pub admin: Option<TcpListener>,
}

/// A port that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What the system said.
    pub source: io::Error,
}

impl Server {
    /// Checks `settings` whole and builds every part: the history, the registry
    /// with the configured statuses, TLS, CORS, the routes and the admin API.
    /// Nothing binds and no task starts (only, once every setting is good, the
    /// history's writer), so a bad setting is refused before the port is
    /// announced. With history in PostgreSQL, the database is reached here: a
    /// bad URL or a refused password is an error, a database that is down is
    /// not (the history waits in memory); and a new replica takes the fleet's
    /// statuses before it answers.
    pub async fn new(mut settings: Settings) -> Result<Self, SettingsError> {
        if let Some(addr) = settings.admin_listen
            && !addr.ip().is_loopback()
            && !settings.admin_allow_remote
        {
            return Err(SettingsError::AdminNotLoopback(addr));
        }
        let admin_token = settings
            .admin_token_file
            .as_deref()
            .map(admin_token)
            .transpose()?;
        let tls = settings.tls.as_ref().map(tls::server_config).transpose()?;
        let cors = settings.cors.layer()?;
        if settings.replica.lease_period < Duration::from_millis(300) {
            return Err(SettingsError::LeasePeriod(settings.replica.lease_period));
        }
        let mut configured = Configured::new(settings.services.clone(), settings.config.clone());
        let replica = settings.replica.name();
        // The file's [history], read before anything is recorded: flags win;
        // and its alerts.
        let mut alerting = AlertSettings {
            replica: replica.clone(),
            lease_period: settings.replica.lease_period,
            retention: settings.history.retention,
            ..AlertSettings::default()
        };
        if let Some(path) = configured.file() {
            let file = crate::config::ConfigFile::load(path)?;
            if let Some(table) = file.history {
                table.fill(&mut settings.history);
            }
            alerting.receivers = file.alert;
            alerting.rules = file.alert_rule;
            alerting.public_url = file.public_url;
            alerting.windows = file.maintenance;
        }
        let alerts = Alerts::new(alerting);
        let shared = matches!(settings.history.location, Location::Postgres(_));
        let instance = instance_id();
        let state = StoreState::default();
        let scope = Scope {
            replica: replica.clone(),
            instance: instance.clone(),
            fleet: shared,
        };
        let recorder = Arc::new(Recorder::new(scope, settings.history.buffer, state.clone()));
        let metrics =
            Metrics::with_collectors(vec![Box::new(state.clone()), Box::new(alerts.metrics())]);
        let drained = fleet::Drained::default();
        let mut observers: Vec<Arc<dyn Observer>> =
            vec![recorder.clone(), Arc::new(metrics.clone())];
        // Without a rule nothing reads the changes: they are not queued.
        if alerts.is_enabled() {
            observers.push(alerts.observer());
        }
        if shared {
            observers.push(Arc::new(drained.clone()));
        }
        let registry = HealthRegistry::with_backlog(observers, settings.health.watch_all_backlog);
        let upstreams = configured.apply(&registry)?;
        // Only now, with every other setting good, is the history touched; the
        // recorder has kept the configured statuses until its writer starts.
        let opened = History::open(&settings.history, &replica, &instance, &state).await?;
        let (reread, reread_rx) = tokio::sync::mpsc::unbounded_channel();
        let writer = recorder
            .start(
                opened.history.shared(),
                &settings.history,
                shared.then_some(reread),
            )
            .await?;
        metrics.watch(registry.clone());
        let mut monitor = Monitor::observed(
            registry.clone(),
            vec![recorder.clone(), Arc::new(metrics.clone())],
        )
        .upstreams_per_connection(settings.upstreams_per_connection);
        let view = fleet::View::default();
        let fleet = match opened.postgres {
            None => None,
            Some(postgres) => {
                // Registered now (no probe runs before a lease), so that the
                // settling below takes the fleet's statuses of them too.
                monitor = monitor.shared(replica.clone());
                monitor.apply(&upstreams);
                if state.is_up() {
                    fleet::settle(&postgres, &registry, &recorder, settings.history.timeout).await;
                }
                Some(fleet::Parts {
                    postgres,
                    registry: registry.clone(),
                    recorder: recorder.clone(),
                    reports: monitor.reports(),
                    view: view.clone(),
                    lease_period: settings.replica.lease_period,
                    drained,
                    reread: reread_rx,
                })
            }
        };
        let alerts = alerts.with_store(opened.history.alerts());
        let state = WebState {
            maintenance: Some(alerts.maintenance()),
            registry: registry.clone(),
            upstreams: monitor.reports(),
            history: opened.history,
            metrics,
            instance: Instance {
                replica,
                history: state,
                fleet: fleet.as_ref().map(|_| view),
            },
        };
        let app = routes::app(&settings, state, cors);
        Ok(Self {
            listen: settings.listen,
            admin_listen: settings.admin_listen,
            admin_token,
            registry: registry.clone(),
            app,
            tls,
            connections: settings.connections,
            drain_delay: settings.drain_delay,
            shutdown_grace: settings.shutdown_grace,
            writer,
            reloader: Reloader(Arc::new(Mutex::new(Reloadable {
                configured,
                monitor,
                registry,
            }))),
            upstreams,
            fleet,
            alerts,
        })
    }

    /// The statuses this server serves, to change them from the program that runs it.
    pub fn registry(&self) -> &HealthRegistry {
        &self.registry
    }

    /// Re-reads the config file on demand (the binary calls it on SIGHUP).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Whether the port is served over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Opens the ports the settings name.
    pub async fn bind(&self) -> Result<Listeners, BindError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| BindError { addr, source })
        };
        let main = bind(self.listen).await?;
        let admin = match self.admin_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        Ok(Listeners { main, admin })
    }

    /// Serves `listeners` until `shutdown` is cancelled, then drains (see the
    /// module documentation) and returns.
    pub async fn run(self, listeners: Listeners, shutdown: CancellationToken) {
        let Self {
            registry,
            app,
            admin_token,
            tls,
            connections,
            drain_delay,
            shutdown_grace,
            writer,
            reloader,
            upstreams,
            fleet,
            alerts,
            ..
        } = self;
        // Until the shutdown begins, when the leases go back to the fleet.
        let maintenance = alerts.maintenance();
        let alerting = alerts.start(registry.clone(), shutdown.clone());
        reloader.monitor(|monitor| monitor.apply(&upstreams));
        let fleet = fleet.map(|parts| Fleet::start(parts, Arc::new(reloader.clone())));
        // Cancelled at the drain: the admin API stops with the port.
        let draining = CancellationToken::new();
        if let Some(listener) = listeners.admin
            && let Ok(addr) = listener.local_addr()
        {
            let guard = admin::guard::Guard::new(addr, admin_token);
            let router = admin::router(registry.clone(), maintenance, guard);
            let stop = draining.clone().cancelled_owned();
            tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, router)
                    .with_graceful_shutdown(stop)
                    .await
                {
                    tracing::error!(%error, "admin API stopped");
                }
            });
        }
        let stop = async {
            shutdown.cancelled().await;
            registry.shutdown();
            // The leases go back now: the others probe while this one drains.
            if let Some(fleet) = &fleet {
                fleet.leave();
            }
            // Lame duck: NOT_SERVING everywhere, still answering, so that load
            // balancers and Kubernetes endpoints move away before connections close.
            tokio::time::sleep(drain_delay).await;
            registry.end_streams();
            draining.cancel();
        };
        serve::serve(listeners.main, app, &connections, tls, stop, shutdown_grace).await;
        match fleet {
            Some(fleet) => fleet.stop().await,
            None => reloader.monitor(Monitor::stop),
        }
        for task in alerting {
            let _ = task.await;
        }
        // The shutdown's own changes are written, and the stop marked clean.
        writer.stop().await;
    }
}

/// The token in `path`: its first line, which must not be empty.
fn admin_token(path: &std::path::Path) -> Result<String, SettingsError> {
    let refuse = |reason: String| SettingsError::AdminToken {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| refuse(e.to_string()))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(refuse("the file holds no token on its first line".into()));
    }
    Ok(token.to_owned())
}

/// Re-reads the config file and applies it: statuses set and removed, upstreams
/// added, changed and removed. Cloning is cheap: clones reload the same server.
#[derive(Clone)]
pub struct Reloader(Arc<Mutex<Reloadable>>);

struct Reloadable {
    configured: Configured,
    monitor: Monitor,
    registry: HealthRegistry,
}

impl Reloader {
    /// Reloads; on error nothing changes. Returns how many upstreams are monitored.
    pub fn reload(&self) -> Result<usize, ConfigError> {
        let mut parts = self.lock();
        let Reloadable {
            configured,
            monitor,
            registry,
        } = &mut *parts;
        let upstreams = configured.apply(registry)?;
        monitor.apply(&upstreams);
        Ok(monitor.len())
    }

    /// Whether there is a config file to reload.
    pub fn has_file(&self) -> bool {
        self.lock().configured.file().is_some()
    }

    fn monitor<T>(&self, change: impl FnOnce(&mut Monitor) -> T) -> T {
        change(&mut self.lock().monitor)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Reloadable> {
        // A panic mid-reload leaves the last applied state, which is still whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The leases drive the monitor through the reloader, which owns it.
impl fleet::Probing for Reloader {
    fn configured(&self) -> BTreeSet<String> {
        self.monitor(|monitor| monitor.configured())
    }

    fn allow(&self, upstreams: BTreeSet<String>) -> Vec<JoinHandle<()>> {
        self.monitor(|monitor| monitor.allow(upstreams))
    }
}
