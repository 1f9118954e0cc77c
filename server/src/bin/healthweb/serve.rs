//! `healthweb serve`: every flag (each also an environment variable) into
//! [`Settings`], then the library's [`Server`], with signals around it.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Args;
use healthweb_client::native::TlsSettings;
use healthweb_server::{
    ConnectionLimits, HealthLimits, Server, Settings,
    cors::CorsSettings,
    fleet::ReplicaSettings,
    history::{HistorySettings, Location, Secret},
    settings::Linger,
    status::ServiceStatus,
};
use tokio_util::sync::CancellationToken;

use crate::{exit::Exit, say, signals};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on for gRPC, gRPC-Web, /healthz and the page (port 0 picks one).
    #[arg(long, env = "HEALTHWEB_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory of the status page, served at /.
    #[arg(long, env = "HEALTHWEB_WWW", default_value = "www")]
    www: PathBuf,
    /// A service and its status, NAME=STATUS with STATUS one of SERVING, NOT_SERVING,
    /// UNKNOWN; repeatable; `=STATUS` sets the whole server (""). Wins over --config.
    #[arg(
        long = "service",
        env = "HEALTHWEB_SERVICE",
        value_delimiter = ',',
        value_name = "NAME=STATUS"
    )]
    services: Vec<ServiceStatus>,
    /// TOML file with a [services] table of NAME = "STATUS"; re-read on SIGHUP.
    #[arg(long, env = "HEALTHWEB_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address of the admin HTTP API (set or remove statuses at run time); off when absent.
    #[arg(long, env = "HEALTHWEB_ADMIN_LISTEN", value_name = "ADDR")]
    admin_listen: Option<SocketAddr>,
    /// Let --admin-listen bind a non-loopback address (then use --admin-token-file too).
    #[arg(long, env = "HEALTHWEB_ADMIN_ALLOW_REMOTE")]
    admin_allow_remote: bool,
    /// A file whose first line is a token every admin request must send as
    /// `Authorization: Bearer TOKEN`.
    #[arg(long, env = "HEALTHWEB_ADMIN_TOKEN_FILE", value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// An origin whose pages may call this server (CORS): scheme://host[:port]; repeatable;
    /// `*` allows any. Without it only same-origin pages can call.
    #[arg(
        long = "cors-origin",
        env = "HEALTHWEB_CORS_ORIGIN",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    cors_origins: Vec<String>,
    /// A request header other origins may send, besides content-type, authorization,
    /// x-grpc-web, x-user-agent and grpc-timeout; repeatable.
    #[arg(
        long = "cors-allow-header",
        env = "HEALTHWEB_CORS_ALLOW_HEADER",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    cors_allow_headers: Vec<String>,
    /// On SIGTERM or ctrl-c, how long every service reports NOT_SERVING while the
    /// server still answers, before it drains (so load balancers move away first).
    #[arg(long, env = "HEALTHWEB_DRAIN_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    drain_delay: Duration,
    /// Once draining, how long open connections get before they are closed.
    #[arg(long, env = "HEALTHWEB_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
    /// Concurrent HTTP/2 streams per connection (each open Watch holds one).
    #[arg(long, env = "HEALTHWEB_MAX_CONCURRENT_STREAMS", default_value_t = ConnectionLimits::default().max_concurrent_streams)]
    max_concurrent_streams: u32,
    /// How long a new connection may take to complete its first request (TLS handshake,
    /// HTTP/1.1 headers, or the HTTP/2 preface and first HEADERS); also each later
    /// HTTP/1.1 request's headers.
    #[arg(long, env = "HEALTHWEB_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    header_read_timeout: Duration,
    /// A connection with no request or stream open for this long is closed (an open
    /// Watch is never idle).
    #[arg(long, env = "HEALTHWEB_IDLE_TIMEOUT", default_value = "2m", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// How often HTTP/2 connections are PINGed (and the TCP keepalive time), to find
    /// peers that vanished.
    #[arg(long, env = "HEALTHWEB_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    keepalive_interval: Duration,
    /// How long a PING may go unanswered before the connection is closed.
    #[arg(long, env = "HEALTHWEB_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    keepalive_timeout: Duration,
    /// How long a gRPC request body may take to arrive when the call has no
    /// grpc-timeout (with one, the grpc-timeout bounds the whole call).
    #[arg(long, env = "HEALTHWEB_REQUEST_BODY_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    request_body_timeout: Duration,
    /// After an HTTP/1.1 refusal, how long the rest of the request body is read
    /// (and thrown away) so the client reads the answer instead of a reset.
    #[arg(long, env = "HEALTHWEB_LINGER_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    linger_timeout: Duration,
    /// ...and how many bytes of it at most.
    #[arg(long, env = "HEALTHWEB_LINGER_MAX_BYTES", default_value_t = ConnectionLimits::default().linger.max_bytes)]
    linger_max_bytes: u64,
    /// Open connections at once. At the cap the oldest connection with nothing in
    /// flight is closed to make room; when all are busy, new ones wait in the backlog.
    #[arg(long, env = "HEALTHWEB_MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_connections)]
    max_connections: usize,
    /// Largest gRPC request message, in bytes; larger ones get RESOURCE_EXHAUSTED.
    #[arg(long, env = "HEALTHWEB_MAX_REQUEST_SIZE", default_value_t = Settings::default().max_request_message)]
    max_request_size: usize,
    /// Longest service name, in bytes; longer ones get INVALID_ARGUMENT.
    #[arg(long, env = "HEALTHWEB_MAX_SERVICE_NAME", default_value_t = HealthLimits::default().max_service_name)]
    max_service_name: usize,
    /// TLS certificate chain (PEM) for the port: gRPC over HTTP/2 (ALPN h2), gRPC-Web
    /// and the page over https. Needs --tls-key.
    #[arg(
        long,
        env = "HEALTHWEB_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) matching --tls-cert.
    #[arg(
        long,
        env = "HEALTHWEB_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// CA bundle (PEM): clients must present a certificate it signed (mTLS).
    #[arg(
        long,
        env = "HEALTHWEB_TLS_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_client_ca: Option<PathBuf>,
    /// Most services List returns; past it List answers RESOURCE_EXHAUSTED.
    #[arg(long, env = "HEALTHWEB_LIST_LIMIT", default_value_t = HealthLimits::default().max_list)]
    list_limit: usize,
    /// How many recent changes are kept for WatchAll streams (the page's) that
    /// reconnect: one that missed more gets a new snapshot instead.
    #[arg(long, env = "HEALTHWEB_WATCH_ALL_BACKLOG", default_value_t = HealthLimits::default().watch_all_backlog)]
    watch_all_backlog: usize,
    /// Monitored upstreams on one address share a connection, this many on each
    /// (an HTTP/2 stream apiece); more open another.
    #[arg(long, env = "HEALTHWEB_UPSTREAMS_PER_CONNECTION", default_value_t = Settings::default().upstreams_per_connection as u64, value_parser = clap::value_parser!(u64).range(1..))]
    upstreams_per_connection: u64,
    /// Where every status change is kept: an SQLite file (created if missing),
    /// `memory` (kept only while running), or a PostgreSQL URL
    /// (postgres://USER@HOST:PORT/DB?sslmode=require) that replicas share. Default:
    /// history.db in $STATE_DIRECTORY, $XDG_STATE_HOME/healthweb or
    /// ~/.local/state/healthweb, and memory if that cannot be used. The password
    /// comes from the URL, --history-password-file, or HEALTHWEB_HISTORY_PASSWORD.
    #[arg(
        long,
        env = "HEALTHWEB_HISTORY",
        value_name = "PATH|memory|URL",
        hide_env_values = true
    )]
    history: Option<String>,
    /// A file whose first line is the PostgreSQL password.
    #[arg(long, env = "HEALTHWEB_HISTORY_PASSWORD_FILE", value_name = "FILE")]
    history_password_file: Option<PathBuf>,
    /// The CA bundle (PEM) that signed PostgreSQL's certificate: with it, the
    /// certificate is verified (as libpq's sslrootcert; sslmode=verify-full verifies
    /// against the system's roots without it).
    #[arg(long, env = "HEALTHWEB_HISTORY_CA", value_name = "FILE")]
    history_ca: Option<PathBuf>,
    /// While the history store is away, at most this many changes are kept in
    /// memory (then written); past it the oldest are dropped.
    #[arg(long, env = "HEALTHWEB_HISTORY_BUFFER", default_value_t = HistorySettings::default().buffer)]
    history_buffer: usize,
    /// How long a connection or a query to the history store may take before it
    /// counts as away.
    #[arg(long, env = "HEALTHWEB_HISTORY_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    history_timeout: Duration,
    /// This replica's name, on the rows it records and on the page (with history
    /// in PostgreSQL). Default: HOSTNAME-PID.
    #[arg(long, env = "HEALTHWEB_REPLICA_ID", value_name = "NAME")]
    replica_id: Option<String>,
    /// With replicas: how long a replica's hold on an upstream lasts unless
    /// renewed (every third of it). A replica killed loses its upstreams to the
    /// others within two periods.
    #[arg(long, env = "HEALTHWEB_LEASE_PERIOD", default_value = "5s", value_parser = humantime::parse_duration)]
    lease_period: Duration,
    /// History older than this is pruned.
    #[arg(long, env = "HEALTHWEB_HISTORY_RETENTION", default_value = "30d", value_parser = humantime::parse_duration)]
    history_retention: Duration,
    /// Each service keeps at most this many history rows (its newest).
    #[arg(long, env = "HEALTHWEB_HISTORY_MAX_ROWS", default_value_t = HistorySettings::default().max_rows)]
    history_max_rows: u64,
    /// A history file that cannot be used (corrupt, or from a newer healthweb) is
    /// renamed PATH.unusable-TIME and a fresh one started, instead of refusing to start.
    #[arg(long, env = "HEALTHWEB_HISTORY_MOVE_ASIDE")]
    history_move_aside: bool,
}

impl ServeArgs {
    fn settings(self) -> Settings {
        Settings {
            listen: self.listen,
            admin_listen: self.admin_listen,
            admin_allow_remote: self.admin_allow_remote,
            admin_token_file: self.admin_token_file,
            www: self.www,
            services: self.services,
            config: self.config,
            cors: CorsSettings {
                origins: self.cors_origins,
                allow_headers: self.cors_allow_headers,
            },
            connections: ConnectionLimits {
                max_concurrent_streams: self.max_concurrent_streams,
                header_read_timeout: self.header_read_timeout,
                idle_timeout: self.idle_timeout,
                keepalive_interval: self.keepalive_interval,
                keepalive_timeout: self.keepalive_timeout,
                max_connections: self.max_connections,
                linger: Linger {
                    timeout: self.linger_timeout,
                    max_bytes: self.linger_max_bytes,
                },
            },
            health: HealthLimits {
                max_service_name: self.max_service_name,
                max_list: self.list_limit,
                watch_all_backlog: self.watch_all_backlog,
            },
            upstreams_per_connection: usize::try_from(self.upstreams_per_connection)
                .unwrap_or(usize::MAX),
            max_request_message: self.max_request_size,
            request_body_timeout: self.request_body_timeout,
            drain_delay: self.drain_delay,
            shutdown_grace: self.shutdown_grace,
            tls: self.tls_cert.map(|cert| TlsSettings {
                cert: Some(cert),
                key: self.tls_key,
                ca: self.tls_client_ca,
                ..TlsSettings::default()
            }),
            history: HistorySettings {
                location: self
                    .history
                    .as_deref()
                    .map_or(Location::Default, Location::parse),
                password_file: self.history_password_file,
                // From the environment only: a flag would show in `ps`.
                password: std::env::var("HEALTHWEB_HISTORY_PASSWORD").ok().map(Secret),
                tls: TlsSettings {
                    ca: self.history_ca,
                    ..TlsSettings::default()
                },
                retention: self.history_retention,
                max_rows: self.history_max_rows,
                move_aside: self.history_move_aside,
                buffer: self.history_buffer,
                timeout: self.history_timeout,
            },
            replica: ReplicaSettings {
                id: self.replica_id,
                lease_period: self.lease_period,
            },
        }
    }
}

pub async fn run(args: ServeArgs) -> Exit {
    let settings = args.settings();
    let (delay, grace) = (settings.drain_delay, settings.shutdown_grace);
    let server = match Server::new(settings).await {
        Ok(server) => server,
        Err(error) => {
            say(format_args!("healthweb: {error}"));
            return Exit::BadArguments;
        }
    };
    // Before the address is announced, so a signal sent the moment the server is
    // up is handled, never the default action (which kills).
    let (terminate, hangup) = match (signals::Terminate::install(), signals::Hangup::install()) {
        (Ok(terminate), Ok(hangup)) => (terminate, hangup),
        (Err(error), _) | (_, Err(error)) => {
            say(format_args!("healthweb: cannot catch signals: {error}"));
            return Exit::BadArguments;
        }
    };
    let listeners = match server.bind().await {
        Ok(listeners) => listeners,
        Err(error) => {
            say(format_args!("healthweb: {error}"));
            return Exit::ConnectionFailure;
        }
    };
    // Tests and scripts read these lines to learn a port-0 address.
    let scheme = if server.is_tls() { "https" } else { "http" };
    if let Ok(addr) = listeners.main.local_addr() {
        say(format_args!("listening on {scheme}://{addr}"));
    }
    if let Some(Ok(addr)) = listeners.admin.as_ref().map(|l| l.local_addr()) {
        say(format_args!("admin listening on http://{addr}"));
    }
    let reloader = server.reloader();
    tokio::spawn(hangup.on_each(move || {
        if !reloader.has_file() {
            tracing::info!("SIGHUP: no --config file to reload");
            return;
        }
        match reloader.reload() {
            Ok(upstreams) => tracing::info!(upstreams, "config reloaded"),
            Err(error) => tracing::error!(%error, "config reload failed; the running config stays"),
        }
    }));
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        terminate.recv().await;
        say(format_args!(
            "shutting down: every service is NOT_SERVING; draining in {} for at most {}",
            humantime::format_duration(delay),
            humantime::format_duration(grace)
        ));
        stop.cancel();
    });
    server.run(listeners, shutdown).await;
    say("stopped");
    Exit::Success
}
