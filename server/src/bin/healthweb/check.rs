//! `healthweb check`: a grpc-health-probe that also speaks gRPC-Web, on the same
//! client core as the browser module (`healthweb-client`, native build).
//!
//! Exit codes are grpc-health-probe's ([`Exit`]), so it drops into existing
//! scripts: 0 SERVING, 1 bad arguments, 2 connection failure, 3 RPC failure,
//! 4 not SERVING.
//!
//! Three ways to run: one Check (the default); `--watch`, following the status
//! with Watch and printing each change (reconnecting as the spec says); and
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

use crate::exit::Exit;

#[derive(Args)]
pub struct CheckArgs {
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
    output: Output,
}

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

/// What to probe and how.
struct Probe {
    /// Where, over which wire, with which TLS.
    target: Target,
    /// The service to ask about; `""` is the whole server.
    service: String,
    /// Deadline and extra headers of each call.
    options: Options,
    /// How to print.
    output: Output,
}

/// `healthweb check`: one Check, or `--watch`, or `--interval`.
pub async fn run(args: CheckArgs) -> Exit {
    let protocol = match (args.grpc_web, args.grpc_web_text) {
        (true, _) => Protocol::GrpcWeb,
        (_, true) => Protocol::GrpcWebText,
        _ => Protocol::Grpc,
    };
    let probe = Probe {
        target: Target {
            url: args.addr,
            protocol,
            tls: TlsSettings {
                ca: args.tls_ca,
                cert: args.tls_cert,
                key: args.tls_key,
                server_name: args.tls_server_name,
                insecure_skip_verify: args.tls_no_verify,
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
        watch(&probe, stop).await
    } else if let Some(interval) = args.interval {
        poll(&probe, interval, stop).await
    } else {
        check_once(&probe).await
    }
}

/// Runs one Check and returns the exit code.
async fn check_once(probe: &Probe) -> Exit {
    let client = match connect(probe).await {
        Ok(client) => client,
        Err(code) => return code,
    };
    let start = Instant::now();
    let result = client.check(&probe.service).await;
    report(probe, &result, start.elapsed(), None)
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
        let result = client.check(&probe.service).await;
        code = report(probe, &result, start.elapsed(), Some(SystemTime::now()));
    }
}

/// Follows the status with Watch until interrupted; returns the exit code of the
/// last status seen.
async fn watch(probe: &Probe, stop: impl Future<Output = ()>) -> Exit {
    let client = match connect(probe).await {
        Ok(client) => client,
        Err(code) => return code,
    };
    let mut code = Exit::RpcFailure;
    let mut last = None;
    let follow = client.watch(&probe.service, |update: Update| {
        // The core reports every reconnect attempt; a person wants each change once.
        let seen = (update.status, update.state);
        if last == Some(seen) && update.error.is_none() {
            return;
        }
        last = Some(seen);
        code = exit_code(update.status);
        print_update(probe, &update);
    });
    tokio::select! {
        () = follow => {}
        () = stop => {}
    }
    code
}

async fn connect(probe: &Probe) -> Result<NativeClient, Exit> {
    match native::connect(&probe.target, probe.options.clone()).await {
        Ok(client) => Ok(client),
        Err(error @ ConnectError::Invalid(_)) => {
            fail(probe, "bad arguments", &error.to_string(), None);
            Err(Exit::BadArguments)
        }
        Err(error) => {
            let hint = "is the server running, and is the address right? \
                        Raise --connect-timeout for a slow network";
            fail(
                probe,
                "connection failure",
                &format!("{error} ({hint})"),
                None,
            );
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
            match probe.output {
                Output::Text => match at {
                    Some(at) => println!("{} status: {word} ({ms:.1} ms)", timestamp(at)),
                    None => println!("status: {word}"),
                },
                Output::Json => print_json(serde_json::json!({
                    "time": timestamp(at.unwrap_or_else(SystemTime::now)),
                    "addr": probe.target.url,
                    "service": probe.service,
                    "status": word,
                    "latency_ms": (ms * 1000.0).round() / 1000.0,
                })),
            }
            let _ = std::io::stdout().flush();
            exit_code(*status)
        }
        Err(error) => {
            let hint = match error.code() {
                tonic::Code::NotFound => {
                    " (the server does not know this service; check --service)"
                }
                tonic::Code::DeadlineExceeded => {
                    " (the server did not answer in time; raise --timeout)"
                }
                tonic::Code::Unimplemented => {
                    " (no grpc.health.v1.Health there; right port and protocol?)"
                }
                _ => "",
            };
            fail(
                probe,
                "health rpc failed",
                &format!("{error}{hint}"),
                Some(error),
            );
            Exit::RpcFailure
        }
    }
}

fn fail(probe: &Probe, what: &str, message: &str, error: Option<&Error>) {
    match probe.output {
        Output::Text => eprintln!("error: {what}: {message}"),
        Output::Json => print_json(serde_json::json!({
            "time": timestamp(SystemTime::now()),
            "addr": probe.target.url,
            "service": probe.service,
            "error": {
                "kind": what,
                "code": error.map(Error::code_name),
                "message": message,
            },
        })),
    }
}

fn print_update(probe: &Probe, update: &Update) {
    let now = timestamp(SystemTime::now());
    let word = update.status.as_str_name();
    let state = update.state.as_str();
    match probe.output {
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
            "addr": probe.target.url,
            "service": probe.service,
            "status": word,
            "state": state,
            "error": update.error.as_ref().map(ToString::to_string),
        })),
    }
    let _ = std::io::stdout().flush();
}

fn print_json(value: serde_json::Value) {
    println!("{value}");
}
