//! Everything a server is built from, in one value. The `healthweb` binary fills
//! it from flags and environment variables, tests fill it directly, and
//! [`crate::Server::new`] checks it whole before anything binds, so a bad value
//! is refused before the port is announced.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use healthweb_client::native::TlsSettings;

use crate::{
    config::ConfigError,
    cors::CorsSettings,
    fleet::ReplicaSettings,
    health::HealthLimits,
    history::{HistorySettings, StoreError},
    status::ServiceStatus,
    tls::TlsError,
};

/// One server's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The one port for gRPC, gRPC-Web, `/healthz` and the page (port 0 picks one).
    pub listen: SocketAddr,
    /// The admin API's address; off when absent.
    pub admin_listen: Option<SocketAddr>,
    /// Let `admin_listen` be a non-loopback address.
    pub admin_allow_remote: bool,
    /// A file holding the bearer token every admin request must carry; none when absent.
    pub admin_token_file: Option<PathBuf>,
    /// The status page's directory, served at `/`.
    pub www: PathBuf,
    /// Statuses from the command line; they win over the config file.
    pub services: Vec<ServiceStatus>,
    /// The TOML config file, re-read on reload.
    pub config: Option<PathBuf>,
    /// Which other origins' pages may call.
    pub cors: CorsSettings,
    /// Connection-level limits.
    pub connections: ConnectionLimits,
    /// The Health service's own limits.
    pub health: HealthLimits,
    /// Largest accepted gRPC request message, in bytes.
    pub max_request_message: usize,
    /// How long a gRPC request body may take to arrive when the call sends no
    /// `grpc-timeout` (which, when sent, bounds the whole call instead).
    pub request_body_timeout: Duration,
    /// On shutdown, how long every service reports NOT_SERVING while the server
    /// still accepts and answers, so load balancers move away first (lame duck).
    pub drain_delay: Duration,
    /// How long open connections get to finish once the server drains.
    pub shutdown_grace: Duration,
    /// TLS for the port (`cert` and `key`, and `ca` for mTLS); cleartext when absent.
    pub tls: Option<TlsSettings>,
    /// Where the history of status changes is kept, and for how long.
    pub history: HistorySettings,
    /// With history in PostgreSQL: this replica's name and its lease period.
    pub replica: ReplicaSettings,
    /// How many monitored upstreams on one address share a connection.
    pub upstreams_per_connection: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: None,
            admin_allow_remote: false,
            admin_token_file: None,
            www: PathBuf::from("www"),
            services: Vec::new(),
            config: None,
            cors: CorsSettings::default(),
            connections: ConnectionLimits::default(),
            health: HealthLimits::default(),
            max_request_message: 16 * 1024,
            request_body_timeout: Duration::from_secs(10),
            drain_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(10),
            tls: None,
            history: HistorySettings::default(),
            replica: ReplicaSettings::default(),
            upstreams_per_connection: crate::monitor::pool::DEFAULT_PER_CONNECTION,
        }
    }
}

/// Why settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The admin API would be reachable from the network without the operator saying so.
    #[error(
        "--admin-listen {0} is not a loopback address and the admin API has no \
         authentication; bind 127.0.0.1 or pass --admin-allow-remote"
    )]
    AdminNotLoopback(SocketAddr),
    /// A CORS origin or header name that cannot be used.
    #[error(transparent)]
    Cors(#[from] crate::cors::CorsError),
    /// TLS files that cannot be loaded or do not fit together.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The config file cannot be read, parsed or used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The history cannot be used: a file that is corrupt, locked or from a newer
    /// healthweb; a database URL that does not parse, a password refused.
    #[error("cannot use the history: {0}{hint}", hint = history_hint(.0))]
    History(#[from] StoreError),
    /// The lease period cannot work.
    #[error(
        "--lease-period {0:?} is too short: leases are renewed every third of it; give 300ms or more"
    )]
    LeasePeriod(Duration),
    /// The admin token file cannot be read, or holds no token.
    #[error("cannot use --admin-token-file {path}: {reason}")]
    AdminToken {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Concurrent HTTP/2 streams per connection (each Watch holds one).
    pub max_concurrent_streams: u32,
    /// How long a new connection may take to complete its first request: the TLS
    /// handshake, the protocol choice, the HTTP/1.1 headers or the HTTP/2 preface
    /// and first HEADERS (slowloris, silent sockets). Later HTTP/1.1 requests get as
    /// long for their headers.
    pub header_read_timeout: Duration,
    /// A connection with no request or stream open for this long is closed.
    pub idle_timeout: Duration,
    /// How often an HTTP/2 connection is PINGed (and the TCP keepalive time
    /// under HTTP/1.1), to find peers that vanished without closing.
    pub keepalive_interval: Duration,
    /// How long a PING may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
    /// Open connections at once (see the module documentation for what happens at the cap).
    pub max_connections: usize,
    /// How a refused HTTP/1.1 request's unread body is drained.
    pub linger: Linger,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            max_connections: 10_000,
            linger: Linger::default(),
        }
    }
}

/// After an HTTP/1.1 answer that did not read the whole request body (a refusal),
/// what is left of the body is read and thrown away, for at most `timeout` and
/// `max_bytes` (nginx's lingering close): closing at once would reset the
/// connection while the client is still sending, and it would never read the answer.
#[derive(Debug, Clone, Copy)]
pub struct Linger {
    /// How long to keep reading.
    pub timeout: Duration,
    /// How much to read at most.
    pub max_bytes: u64,
}

impl Default for Linger {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            max_bytes: 1 << 20,
        }
    }
}

/// What to do about a history that cannot be used.
fn history_hint(error: &StoreError) -> &'static str {
    match error {
        StoreError::Corrupt(..) | StoreError::Locked(..) => {
            " (--history PATH picks another file; --history memory keeps none)"
        }
        StoreError::Newer(..) => " (run the newer healthweb, or point --history elsewhere)",
        _ => "",
    }
}
