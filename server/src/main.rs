//! `healthweb`: serve the gRPC health protocol to every caller on one port,
//! change statuses at run time, and probe any gRPC health server.
//!
//! Exit codes (as grpc-health-probe's, so scripts can tell failures apart):
//! 0 success, 1 bad arguments or config, 2 cannot listen or connect, 3 the
//! server refused the request.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use healthweb_client::{
    Options,
    native::{Protocol, Target, TlsOptions},
};
use healthweb_server::{
    ConnectionLimits, HealthLimits, HealthRegistry, RouteOptions, ServerOptions, admin,
    config::Configured, monitor::Monitor, probe, signals, status::ServiceStatus, tls::TlsFiles,
};
use tokio::{net::TcpListener, sync::watch};

#[derive(Parser)]
#[command(name = "healthweb", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve grpc.health.v1.Health over gRPC, gRPC-Web, /healthz and the status page.
    Serve(Box<ServeArgs>),
    /// Set a service's status through a running server's admin API.
    Set(SetArgs),
    /// Remove a service through a running server's admin API (Check then answers NOT_FOUND).
    Remove(RemoveArgs),
    /// Probe a gRPC health server, natively or over gRPC-Web, like grpc-health-probe.
    /// Exit codes: 0 SERVING, 1 bad arguments, 2 connection failure, 3 RPC failure,
    /// 4 not SERVING.
    Check(Box<CheckArgs>),
}

#[derive(Args)]
struct CheckArgs {
    /// The server: http://HOST:PORT, or https://HOST:PORT for TLS.
    #[arg(long, env = "HEALTHWEB_ADDR", value_name = "URL")]
    addr: String,
    /// The service to check; "" (the default) is the whole server.
    #[arg(long, default_value = "")]
    service: String,
    /// Speak gRPC-Web (binary) over HTTP/1.1 instead of native gRPC.
    #[arg(long, conflicts_with = "grpc_web_text")]
    grpc_web: bool,
    /// Speak gRPC-Web text (base64) over HTTP/1.1 instead of native gRPC.
    #[arg(long)]
    grpc_web_text: bool,
    /// Deadline of each Check (sent as grpc-timeout, and enforced here).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// How long to wait for the connection (TCP and TLS).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// An extra request header, NAME:VALUE (for example authorization:Bearer x); repeatable.
    #[arg(long = "header", value_name = "NAME:VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The user-agent to send.
    #[arg(long, value_name = "UA")]
    user_agent: Option<String>,
    /// CA bundle (PEM) to verify the server with, instead of the system's roots.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mTLS; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Client private key (PEM) for mTLS; needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The name to verify the server certificate against, instead of the address's host.
    #[arg(long, value_name = "NAME")]
    tls_server_name: Option<String>,
    /// Accept any server certificate (tests and emergencies only).
    #[arg(long)]
    tls_no_verify: bool,
    /// Follow the status with Watch and print each change with its time, until ctrl-c.
    #[arg(long, conflicts_with = "interval")]
    watch: bool,
    /// Check again every DURATION (for example 1s) and print each result, until ctrl-c.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    interval: Option<Duration>,
    /// How to print results.
    #[arg(long, value_enum, default_value = "text")]
    output: probe::Output,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not NAME:VALUE"))?;
    Ok((name.trim().to_owned(), value.trim().to_owned()))
}

#[derive(Args)]
struct ServeArgs {
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
    /// Let --admin-listen bind a non-loopback address. The admin API has no authentication.
    #[arg(long, env = "HEALTHWEB_ADMIN_ALLOW_REMOTE")]
    admin_allow_remote: bool,
    /// An origin whose pages may call this server (CORS); repeatable; `*` allows any.
    /// Without it only same-origin pages can call.
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
    /// On SIGTERM or ctrl-c, how long open connections get before they are closed.
    #[arg(long, env = "HEALTHWEB_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
    /// Concurrent HTTP/2 streams per connection (each open Watch holds one).
    #[arg(long, env = "HEALTHWEB_MAX_CONCURRENT_STREAMS", default_value_t = ConnectionLimits::default().max_concurrent_streams)]
    max_concurrent_streams: u32,
    /// How long an HTTP/1.1 client may take to send its request headers.
    #[arg(long, env = "HEALTHWEB_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    header_read_timeout: Duration,
    /// Open connections at once; more wait in the listen backlog.
    #[arg(long, env = "HEALTHWEB_MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_connections)]
    max_connections: usize,
    /// Largest gRPC request message, in bytes; larger ones get RESOURCE_EXHAUSTED.
    #[arg(long, env = "HEALTHWEB_MAX_REQUEST_SIZE", default_value_t = RouteOptions::default().max_request_message)]
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
}

#[derive(Args)]
struct SetArgs {
    /// The admin API's address (healthweb serve --admin-listen).
    #[arg(long, env = "HEALTHWEB_ADMIN", value_name = "ADDR")]
    admin: String,
    /// The service; "" is the whole server.
    name: String,
    /// SERVING, NOT_SERVING or UNKNOWN.
    status: String,
}

#[derive(Args)]
struct RemoveArgs {
    /// The admin API's address (healthweb serve --admin-listen).
    #[arg(long, env = "HEALTHWEB_ADMIN", value_name = "ADDR")]
    admin: String,
    /// The service.
    name: String,
}

/// jemalloc, with a background thread that returns freed pages within about a second
/// (`JEMALLOC_SYS_WITH_MALLOC_CONF` in `.cargo/config.toml`): glibc's malloc kept
/// ~60 MiB after 10k Watch streams had closed, and mimalloc all of it (BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Writes one line to stderr with a single `write`, so a reader never sees half of it.
/// `eprintln!` writes each piece of its format separately (`listening on `, the
/// scheme, each octet of the address, the port...), and a test that read the
/// pipe as it came once took `http://127.0.0.` for the whole address.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!("{}\n", format_args!($($arg)*));
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }};
}

const BAD_ARGUMENTS: u8 = 1;
const CANNOT_CONNECT: u8 = 2;
const REFUSED: u8 = 3;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(BAD_ARGUMENTS)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HEALTHWEB_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            say!("healthweb: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            Command::Set(args) => admin_call(&args.admin, &args.name, Some(&args.status)).await,
            Command::Remove(args) => admin_call(&args.admin, &args.name, None).await,
            Command::Check(args) => check(*args).await,
        }
    });
    // Connections past the grace are dropped with the runtime, not waited for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(code)
}

async fn check(args: CheckArgs) -> u8 {
    let protocol = match (args.grpc_web, args.grpc_web_text) {
        (true, _) => Protocol::GrpcWeb,
        (_, true) => Protocol::GrpcWebText,
        _ => Protocol::Grpc,
    };
    let probe = probe::Probe {
        target: Target {
            url: args.addr,
            protocol,
            tls: TlsOptions {
                ca: args.tls_ca,
                cert: args.tls_cert,
                key: args.tls_key,
                server_name: args.tls_server_name,
                no_verify: args.tls_no_verify,
            },
            connect_timeout: args.connect_timeout,
            user_agent: args.user_agent,
        },
        service: args.service,
        options: Options {
            timeout: Some(args.timeout),
            headers: args.headers,
        },
        output: args.output,
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if args.watch {
        probe::watch(&probe, stop).await
    } else if let Some(interval) = args.interval {
        probe::poll(&probe, interval, stop).await
    } else {
        probe::check_once(&probe).await
    }
}

async fn admin_call(addr: &str, name: &str, status: Option<&str>) -> u8 {
    if let Some(word) = status
        && let Err(error) = word.parse::<healthweb_server::status::StatusWord>()
    {
        say!("healthweb: {error}");
        return BAD_ARGUMENTS;
    }
    match admin::call(addr, name, status).await {
        Ok(text) => {
            println!("{text}");
            0
        }
        Err(error @ admin::AdminError::Connect { .. }) => {
            say!("healthweb: {error}");
            CANNOT_CONNECT
        }
        Err(error) => {
            say!("healthweb: the server refused: {error}");
            REFUSED
        }
    }
}

async fn serve(args: ServeArgs) -> u8 {
    if let Some(addr) = args.admin_listen
        && !addr.ip().is_loopback()
        && !args.admin_allow_remote
    {
        say!(
            "healthweb: --admin-listen {addr} is not a loopback address and the admin API has no \
             authentication; bind 127.0.0.1 or pass --admin-allow-remote"
        );
        return BAD_ARGUMENTS;
    }
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => {
            let files = TlsFiles {
                cert,
                key,
                client_ca: args.tls_client_ca,
            };
            match files.server_config() {
                Ok(config) => Some(config),
                Err(error) => {
                    say!("healthweb: {error}");
                    return BAD_ARGUMENTS;
                }
            }
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let registry = HealthRegistry::new();
    let mut configured = Configured::new(args.services, args.config);
    let upstreams = match configured.apply(&registry) {
        Ok(upstreams) => upstreams,
        Err(error) => {
            say!("healthweb: {error}");
            return BAD_ARGUMENTS;
        }
    };
    let mut options = ServerOptions {
        routes: RouteOptions {
            www: args.www,
            cors_origins: args.cors_origins,
            cors_allow_headers: args.cors_allow_headers,
            max_request_message: args.max_request_size,
            health: HealthLimits {
                max_service_name: args.max_service_name,
                max_list: args.list_limit,
            },
            upstreams: Default::default(),
        },
        connections: ConnectionLimits {
            max_concurrent_streams: args.max_concurrent_streams,
            header_read_timeout: args.header_read_timeout,
            max_connections: args.max_connections,
        },
        shutdown_grace: args.shutdown_grace,
        tls,
    };

    let (terminate, hangup) = match (signals::Terminate::install(), signals::Hangup::install()) {
        (Ok(terminate), Ok(hangup)) => (terminate, hangup),
        (Err(error), _) | (_, Err(error)) => {
            say!("healthweb: cannot catch signals: {error}");
            return BAD_ARGUMENTS;
        }
    };
    let listener = match bind(args.listen, "listening", scheme).await {
        Ok(listener) => listener,
        Err(code) => return code,
    };
    let (stop_tx, stop) = watch::channel(false);
    if let Some(addr) = args.admin_listen {
        let admin_listener = match bind(addr, "admin listening", "http").await {
            Ok(listener) => listener,
            Err(code) => return code,
        };
        let router = admin::router(registry.clone());
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(error) = axum::serve(admin_listener, router)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::error!(%error, "admin API stopped");
            }
        });
    }
    let mut monitor = Monitor::new(registry.clone());
    options.routes.upstreams = monitor.reports();
    monitor.apply(&upstreams);
    let reload_registry = registry.clone();
    tokio::spawn(hangup.on_each(move || {
        if configured.file().is_none() {
            tracing::info!("SIGHUP: no --config file to reload");
            return;
        }
        match configured.apply(&reload_registry) {
            Ok(upstreams) => {
                monitor.apply(&upstreams);
                tracing::info!(upstreams = monitor.len(), "config reloaded");
            }
            Err(error) => tracing::error!(%error, "config reload failed; the running config stays"),
        }
    }));
    let grace = options.shutdown_grace;
    let stopped = async move {
        terminate.recv().await;
        say!(
            "shutting down: every service is NOT_SERVING; draining for at most {}",
            humantime::format_duration(grace)
        );
        stop_tx.send_replace(true);
    };
    if let Err(error) = healthweb_server::run(listener, registry, &options, stopped).await {
        say!("healthweb: {error}");
        return BAD_ARGUMENTS;
    }
    say!("stopped");
    0
}

async fn bind(addr: SocketAddr, what: &str, scheme: &str) -> Result<TcpListener, u8> {
    match TcpListener::bind(addr).await {
        Ok(listener) => {
            let local = listener.local_addr().unwrap_or(addr);
            // Tests and scripts read this line to learn a port-0 address.
            say!("{what} on {scheme}://{local}");
            Ok(listener)
        }
        Err(error) => {
            say!("healthweb: cannot listen on {addr}: {error}");
            Err(CANNOT_CONNECT)
        }
    }
}
