//! `healthweb check`: a grpc-health-probe that also speaks gRPC-Web, on the same
//! client core as the browser module (`healthweb-client`, native build).
//!
//! A drop-in for grpc-health-probe: its flags as it spells them (`-addr=:5000`,
//! `-rpc-timeout 2s`, `-tls-ca-cert`...: [`crate::go_flags`] turns Go's syntax into
//! clap's) beside healthweb's own, its exit codes ([`Exit`]: 0 SERVING, 1 bad
//! arguments, 2 connection failure, 3 RPC failure, 4 not SERVING) and its messages for
//! the same cases. A binary named `grpc_health_probe` runs this (`main.rs`), so a
//! symlink replaces grpc-health-probe without touching a manifest.
//!
//! Three ways to run: one Check (the default); `--watch`, following the status
//! with Watch and printing each change (reconnecting as the spec says), until
//! ctrl-c or, with `--until-not-serving`, until the status is not SERVING; and
//! `--interval`, polling Check the way a simple client checks every second.

use std::{
    io::Write,
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};

use clap::Args;
use healthweb_client::{
    ConnState, Error, Options, ServingStatus, Update,
    native::{self, ConnectError, NativeClient, Protocol, Target, TlsSettings},
};
use tonic::Code;

use crate::{exit::Exit, say};

/// Flags may be given more than once and the last one wins, as Go's flag package
/// (grpc-health-probe's) has it; `--header` adds up.
#[derive(Args)]
#[command(args_override_self = true)]
pub struct CheckArgs {
    /// (required) The server: HOST:PORT (":PORT" is this host; --tls for TLS), or a URL,
    /// http://HOST:PORT or https://HOST:PORT.
    #[arg(long, env = "HEALTHWEB_ADDR", value_name = "ADDR")]
    addr: Option<String>,
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
    #[arg(long, visible_alias = "rpc-timeout", default_value = "1s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// How long to wait for the connection (TCP and TLS).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// An extra request header, NAME:VALUE (for example "authorization: Bearer x"); repeatable.
    #[arg(long = "header", visible_alias = "rpc-header", value_name = "NAME:VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The user-agent to send.
    #[arg(long, value_name = "UA")]
    user_agent: Option<String>,
    /// Compress each request with gzip (gzip-compressed answers are taken either way).
    #[arg(long)]
    gzip: bool,
    /// Use TLS with a HOST:PORT address (an https:// address always does).
    #[arg(long)]
    tls: bool,
    /// CA bundle (PEM) to verify the server with, instead of the system's roots.
    #[arg(long, visible_alias = "tls-ca-cert", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mTLS; needs --tls-key.
    #[arg(
        long,
        visible_alias = "tls-client-cert",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// Client private key (PEM) for mTLS; needs --tls-cert.
    #[arg(
        long,
        visible_alias = "tls-client-key",
        value_name = "FILE",
        requires = "tls_cert"
    )]
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
    /// Watch until the status is not SERVING, then exit 4 (2 if the server goes away).
    #[arg(long, conflicts_with = "interval")]
    until_not_serving: bool,
    /// Check again every DURATION (for example 1s) and print each result, until ctrl-c.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    interval: Option<Duration>,
    /// How to print results.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
    /// Print the options, and how long the connection and the call took, to stderr.
    #[arg(short, long)]
    verbose: bool,
    /// Print healthweb's version and exit.
    #[arg(long)]
    version: bool,
    /// grpc-health-probe's ALTS: refused, healthweb speaks TLS.
    #[arg(long, hide = true)]
    alts: bool,
    /// grpc-health-probe's SPIFFE Workload API: refused, healthweb takes the files.
    #[arg(long, hide = true)]
    spiffe: bool,
}

/// grpc-health-probe's `name: value`: split at the first colon, spaces trimmed.
fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not NAME:VALUE"))?;
    Ok((name.trim().to_owned(), value.trim().to_owned()))
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// `status: SERVING`, as grpc-health-probe prints.
    Text,
    /// One JSON object per result, for scripts.
    Json,
}

/// Where results go, and what they are about.
struct Out {
    output: Output,
    /// The server, as a URL.
    addr: String,
    service: String,
}

/// What to probe and how.
struct Probe {
    /// Where, over which wire, with which TLS.
    target: Target,
    /// Deadline and extra headers of each call.
    options: Options,
    /// Where results go, and the service they are about.
    out: Out,
    /// `-v`: say what is done, and how long it took.
    verbose: bool,
}

/// `healthweb check`: one Check, or `--watch`, or `--interval`.
pub async fn run(args: CheckArgs) -> Exit {
    if args.version {
        println!("healthweb {}", env!("CARGO_PKG_VERSION"));
        return Exit::Success;
    }
    let (watch, until_not_serving, interval) = (args.watch, args.until_not_serving, args.interval);
    let probe = match Probe::new(args) {
        Ok(probe) => probe,
        Err((out, message)) => {
            out.fail("bad arguments", &format!("error: {message}"), None);
            return Exit::BadArguments;
        }
    };
    if probe.verbose {
        probe.print_options();
    }
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if watch || until_not_serving {
        follow(&probe, until_not_serving, stop).await
    } else if let Some(interval) = interval {
        poll(&probe, interval, stop).await
    } else {
        check_once(&probe).await
    }
}

impl Probe {
    /// The probe the flags describe, after grpc-health-probe's checks of them; on a
    /// bad combination, where to say so and what.
    fn new(args: CheckArgs) -> Result<Self, (Out, String)> {
        let target = Self::target(&args);
        let out = Out {
            output: args.output,
            addr: match &target {
                Ok(target) => target.url.clone(),
                Err(_) => args.addr.unwrap_or_default(),
            },
            service: args.service,
        };
        match target {
            Ok(target) => Ok(Self {
                target,
                options: Options {
                    timeout: Some(args.timeout),
                    headers: args.headers,
                },
                out,
                verbose: args.verbose,
            }),
            Err(message) => Err((out, message)),
        }
    }

    /// The service to ask about; `""` is the whole server.
    fn service(&self) -> &str {
        &self.out.service
    }

    fn target(args: &CheckArgs) -> Result<Target, String> {
        if args.alts {
            return Err(
                "--alts is not supported: healthweb check speaks TLS (--tls, with \
                 --tls-client-cert and --tls-client-key for mTLS), not ALTS"
                    .into(),
            );
        }
        if args.spiffe {
            return Err(
                "--spiffe is not supported: healthweb check does not call the \
                 SPIFFE Workload API; give the SVID's files to --tls-client-cert, \
                 --tls-client-key and --tls-ca-cert"
                    .into(),
            );
        }
        let addr = args.addr.as_deref().ok_or("--addr not specified")?;
        for (flag, value) in [
            ("--connect-timeout", args.connect_timeout),
            ("--timeout (-rpc-timeout)", args.timeout),
        ] {
            if value.is_zero() {
                return Err(format!(
                    "{flag} must be greater than zero (specified: {})",
                    humantime::format_duration(value)
                ));
            }
        }
        let url = url(addr, args.tls)?;
        if !url.starts_with("https://") {
            let tls_only = [
                (args.tls_no_verify, "--tls-no-verify"),
                (args.tls_ca.is_some(), "--tls-ca (-tls-ca-cert)"),
                (args.tls_cert.is_some(), "--tls-cert (-tls-client-cert)"),
                (args.tls_server_name.is_some(), "--tls-server-name"),
            ];
            if let Some((_, flag)) = tls_only.iter().find(|(given, _)| *given) {
                return Err(format!(
                    "specified {flag} without TLS: add --tls, or give an https:// address"
                ));
            }
        }
        if args.tls_no_verify {
            if args.tls_ca.is_some() {
                return Err(
                    "cannot specify --tls-ca (-tls-ca-cert) with --tls-no-verify \
                     (CA cert would not be used)"
                        .into(),
                );
            }
            if args.tls_server_name.is_some() {
                return Err("cannot specify --tls-server-name with --tls-no-verify \
                            (server name would not be used)"
                    .into());
            }
        }
        Ok(Target {
            url,
            protocol: match (args.grpc_web, args.grpc_web_text) {
                (true, _) => Protocol::GrpcWeb,
                (_, true) => Protocol::GrpcWebText,
                _ => Protocol::Grpc,
            },
            tls: TlsSettings {
                ca: args.tls_ca.clone(),
                cert: args.tls_cert.clone(),
                key: args.tls_key.clone(),
                server_name: args.tls_server_name.clone(),
                insecure_skip_verify: args.tls_no_verify,
            },
            connect_timeout: args.connect_timeout,
            user_agent: args.user_agent.clone(),
            gzip: args.gzip,
        })
    }

    /// grpc-health-probe's lines for a failed Check, with a hint where one helps.
    fn rpc_failed(&self, error: &Error) {
        let line = match error.code() {
            Code::DeadlineExceeded => format!(
                "timeout: health rpc did not complete within {} (raise --timeout)",
                humantime::format_duration(self.options.timeout.unwrap_or_default())
            ),
            Code::Unimplemented if self.target.gzip => format!(
                "error: health rpc failed: {error} (sent with --gzip: does the server take \
                 gzip-compressed requests?)"
            ),
            Code::Unimplemented => format!(
                "error: this server does not implement the grpc health protocol \
                 (grpc.health.v1.Health): {error} (right port and protocol?)"
            ),
            Code::NotFound => format!(
                "error: health rpc failed: {error} \
                 (the server does not know this service; check --service)"
            ),
            _ => format!("error: health rpc failed: {error}"),
        };
        self.out.fail("health rpc failed", &line, Some(error));
    }

    /// `-v`: the options as grpc-health-probe lists them.
    fn print_options(&self) {
        let target = &self.target;
        say("parsed options:");
        say(format_args!(
            "> addr={} service={:?} conn_timeout={} rpc_timeout={}",
            target.url,
            self.service(),
            humantime::format_duration(target.connect_timeout),
            humantime::format_duration(self.options.timeout.unwrap_or_default()),
        ));
        if !self.options.headers.is_empty() {
            let headers: Vec<_> = self
                .options
                .headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}"))
                .collect();
            say(format_args!("> headers: {}", headers.join(", ")));
        }
        say(format_args!(
            "> protocol={} gzip={}",
            target.protocol, target.gzip
        ));
        let (tls, https) = (&target.tls, target.url.starts_with("https://"));
        say(format_args!("> tls={https}"));
        if https {
            let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
            say(format_args!("  > no-verify={}", tls.insecure_skip_verify));
            say(format_args!(
                "  > ca-cert={}",
                path(&tls.ca).unwrap_or_default()
            ));
            say(format_args!(
                "  > client-cert={}",
                path(&tls.cert).unwrap_or_default()
            ));
            say(format_args!(
                "  > client-key={}",
                path(&tls.key).unwrap_or_default()
            ));
            say(format_args!(
                "  > server-name={}",
                tls.server_name.as_deref().unwrap_or_default()
            ));
        }
    }
}

/// The address as a URL: healthweb's `http://` or `https://` as given, or
/// grpc-health-probe's `HOST:PORT` (`:PORT` for this host), which `--tls` makes
/// `https://`.
fn url(addr: &str, tls: bool) -> Result<String, String> {
    if let Some((scheme, _)) = addr.split_once("://") {
        if tls && scheme == "http" {
            return Err(format!(
                "--tls with the address {addr:?}: use https://, or give HOST:PORT"
            ));
        }
        // The client checks the scheme and the rest.
        return Ok(addr.to_owned());
    }
    let host_port = match addr.strip_prefix(':') {
        Some(port) => format!("localhost:{port}"),
        None => addr.to_owned(),
    };
    let bad =
        || format!("bad address {addr:?}: give HOST:PORT, http://HOST:PORT or https://HOST:PORT");
    let authority: http::uri::Authority = host_port.parse().map_err(|_| bad())?;
    if authority.port().is_none() {
        return Err(bad());
    }
    let scheme = if tls { "https" } else { "http" };
    Ok(format!("{scheme}://{authority}"))
}

/// Runs one Check and returns the exit code.
async fn check_once(probe: &Probe) -> Exit {
    let start = Instant::now();
    let client = match connect(probe).await {
        Ok(client) => client,
        Err(code) => return code,
    };
    let connected = start.elapsed();
    let start = Instant::now();
    let result = client.check(probe.service()).await;
    let took = start.elapsed();
    if probe.verbose {
        say(format_args!(
            "time elapsed: connect={connected:.1?} rpc={took:.1?}"
        ));
    }
    let code = report(probe, &result, took, None);
    if let Ok(status) = result
        && code == Exit::NotServing
    {
        probe.out.unhealthy(status);
    }
    code
}

/// Polls Check every `interval` until interrupted; returns the last exit code.
async fn poll(probe: &Probe, interval: Duration, stop: impl Future<Output = ()>) -> Exit {
    let client = match connect(probe).await {
        Ok(client) => client,
        Err(code) => return code,
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut code = Exit::RpcFailure;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = &mut stop => return code,
        }
        let start = Instant::now();
        let result = client.check(probe.service()).await;
        code = report(probe, &result, start.elapsed(), Some(SystemTime::now()));
    }
}

/// Follows the status with Watch until interrupted (returning the exit code of the
/// last status seen) or, `until_not_serving`, until the status is not SERVING (4) or
/// the server is gone: the stream broke and a new one failed too (2 if the server
/// could not be reached, 3 if it refused). One broken stream alone is not the end:
/// servers close streams for their own reasons, and the client reconnects.
async fn follow(probe: &Probe, until_not_serving: bool, stop: impl Future<Output = ()>) -> Exit {
    let client = match connect(probe).await {
        Ok(client) => client,
        Err(code) => return code,
    };
    let mut code = Exit::RpcFailure;
    let mut last = None;
    let mut failed_in_a_row = 0;
    let (end, ended) = tokio::sync::oneshot::channel();
    let mut end = Some(end);
    let follow = client.watch(probe.service(), |update: Update| {
        if end.is_none() {
            return; // decided; the watch is being dropped
        }
        let failed = matches!(update.state, ConnState::Reconnecting | ConnState::Down);
        failed_in_a_row = if failed { failed_in_a_row + 1 } else { 0 };
        // The core reports every reconnect attempt; a person wants each change once.
        let seen = (update.status, update.state);
        if last != Some(seen) || update.error.is_some() {
            last = Some(seen);
            code = exit_code(update.status);
            probe.out.update(&update);
        }
        if !until_not_serving {
            return;
        }
        if !failed && update.status != ServingStatus::Serving {
            probe.out.unhealthy(update.status);
            code = Exit::NotServing;
        } else if failed_in_a_row >= 2 {
            code = match &update.error {
                Some(error) if error.code() != Code::Unavailable => {
                    probe.rpc_failed(error);
                    Exit::RpcFailure
                }
                error => {
                    let reason = match error {
                        Some(error) => error.to_string(),
                        None => "the stream ended".into(),
                    };
                    probe.out.unreachable(&format!(
                        "the Watch broke and reconnecting failed: {reason}"
                    ));
                    Exit::ConnectionFailure
                }
            };
        } else {
            return;
        }
        if let Some(end) = end.take() {
            let _ = end.send(());
        }
    });
    tokio::select! {
        () = follow => {}
        () = stop => {}
        _ = ended => {}
    }
    code
}

/// Dials the target, saying why not as grpc-health-probe does.
async fn connect(probe: &Probe) -> Result<NativeClient, Exit> {
    if probe.verbose {
        say("establishing connection");
    }
    let start = Instant::now();
    match native::connect(&probe.target, probe.options.clone()).await {
        Ok(client) => {
            if probe.verbose {
                say(format_args!(
                    "connection established (took {:.1?})",
                    start.elapsed()
                ));
            }
            Ok(client)
        }
        Err(ConnectError::Invalid(message)) => {
            probe
                .out
                .fail("bad arguments", &format!("error: {message}"), None);
            Err(Exit::BadArguments)
        }
        Err(ConnectError::Timeout { url, after }) => {
            let line = format!(
                "timeout: failed to connect service {url:?} within {} \
                 (raise --connect-timeout for a slow network)",
                humantime::format_duration(after)
            );
            probe.out.fail("connection failure", &line, None);
            Err(Exit::ConnectionFailure)
        }
        Err(ConnectError::Unreachable { reason, .. }) => {
            probe.out.unreachable(&format!(
                "{reason} (is the server running, and is the address right?)"
            ));
            Err(Exit::ConnectionFailure)
        }
    }
}

fn exit_code(status: ServingStatus) -> Exit {
    if status == ServingStatus::Serving {
        Exit::Success
    } else {
        Exit::NotServing
    }
}

fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn report(
    probe: &Probe,
    result: &Result<ServingStatus, Error>,
    latency: Duration,
    at: Option<SystemTime>,
) -> Exit {
    let ms = latency.as_secs_f64() * 1000.0;
    match result {
        Ok(status) => {
            let word = status.as_str_name();
            let out = &probe.out;
            match out.output {
                Output::Text => match at {
                    Some(at) => println!("{} status: {word} ({ms:.1} ms)", timestamp(at)),
                    None => println!("status: {word}"),
                },
                Output::Json => print_json(serde_json::json!({
                    "time": timestamp(at.unwrap_or_else(SystemTime::now)),
                    "addr": out.addr,
                    "service": out.service,
                    "status": word,
                    "latency_ms": (ms * 1000.0).round() / 1000.0,
                })),
            }
            let _ = std::io::stdout().flush();
            exit_code(*status)
        }
        Err(error) => {
            probe.rpc_failed(error);
            Exit::RpcFailure
        }
    }
}

impl Out {
    /// grpc-health-probe's line for a service that answered and is not SERVING.
    fn unhealthy(&self, status: ServingStatus) {
        if self.output == Output::Text {
            say(format_args!(
                "service unhealthy (responded with {:?})",
                status.as_str_name()
            ));
        }
    }

    /// grpc-health-probe's line for a server that could not be reached.
    fn unreachable(&self, reason: &str) {
        let line = format!(
            "error: failed to connect service at {:?}: {reason}",
            self.addr
        );
        self.fail("connection failure", &line, None);
    }

    /// A failure: its line on stderr, or a JSON object on stdout.
    fn fail(&self, kind: &str, line: &str, error: Option<&Error>) {
        match self.output {
            Output::Text => say(line),
            Output::Json => print_json(serde_json::json!({
                "time": timestamp(SystemTime::now()),
                "addr": self.addr,
                "service": self.service,
                "error": {
                    "kind": kind,
                    "code": error.map(Error::code_name),
                    "message": line,
                },
            })),
        }
    }

    fn update(&self, update: &Update) {
        let now = timestamp(SystemTime::now());
        let word = update.status.as_str_name();
        let state = update.state.as_str();
        match self.output {
            Output::Text => {
                let error = update
                    .error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                if update.state == ConnState::Live {
                    println!("{now} {word}");
                } else {
                    println!("{now} {word} ({state}{error})");
                }
            }
            Output::Json => print_json(serde_json::json!({
                "time": now,
                "addr": self.addr,
                "service": self.service,
                "status": word,
                "state": state,
                "error": update.error.as_ref().map(ToString::to_string),
            })),
        }
        let _ = std::io::stdout().flush();
    }
}

fn print_json(value: serde_json::Value) {
    println!("{value}");
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn addresses_as_grpc_health_probe_and_healthweb_take_them() {
        assert_eq!(url(":5000", false).unwrap(), "http://localhost:5000");
        assert_eq!(url("10.0.0.5:443", true).unwrap(), "https://10.0.0.5:443");
        assert_eq!(url("[::1]:80", false).unwrap(), "http://[::1]:80");
        assert_eq!(url("http://h:1", false).unwrap(), "http://h:1");
        assert_eq!(url("https://h:1", true).unwrap(), "https://h:1");
        assert!(url("http://h:1", true).unwrap_err().contains("--tls"));
        assert!(
            url("localhost", false)
                .unwrap_err()
                .contains("give HOST:PORT")
        );
        assert!(url("a b:1", false).is_err());
    }
}
