//! `healthweb check`: a grpc-health-probe that also speaks gRPC-Web, on the same
//! client core as the browser module (`healthweb-client`, native build).
//!
//! Exit codes are grpc-health-probe's, so it drops into existing scripts:
//! 0 SERVING, 1 bad arguments, 2 connection failure, 3 RPC failure, 4 not SERVING.
//!
//! Three ways to run: one Check (the default); `--watch`, following the status
//! with Watch and printing each change (reconnecting as the spec says); and
//! `--interval`, polling Check the way a simple client checks every second.

use std::{
    io::Write,
    time::{Duration, Instant, SystemTime},
};

use healthweb_client::{
    ConnState, Error, Options, ServingStatus, Update,
    native::{self, ConnectError, NativeClient, Target},
};

/// Exit code: the service is SERVING.
pub const SERVING: u8 = 0;
/// Exit code: the arguments (or TLS files, headers) are unusable.
pub const BAD_ARGUMENTS: u8 = 1;
/// Exit code: no connection (refused, TLS handshake, connect timeout).
pub const CONNECTION_FAILURE: u8 = 2;
/// Exit code: the RPC failed (NOT_FOUND, DEADLINE_EXCEEDED, UNAVAILABLE...).
pub const RPC_FAILURE: u8 = 3;
/// Exit code: the server answered, and not SERVING.
pub const NOT_SERVING: u8 = 4;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// `status: SERVING`, as grpc-health-probe prints.
    Text,
    /// One JSON object per result, for scripts.
    Json,
}

/// What to probe and how.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Where, over which wire, with which TLS.
    pub target: Target,
    /// The service to ask about; `""` is the whole server.
    pub service: String,
    /// Deadline and extra headers of each call.
    pub options: Options,
    /// How to print.
    pub output: Output,
}

/// Runs one Check and returns the exit code.
pub async fn check_once(probe: &Probe) -> u8 {
    let client = match connect(probe).await {
        Ok(client) => client,
        Err(code) => return code,
    };
    let start = Instant::now();
    let result = client.check(&probe.service).await;
    report(probe, &result, start.elapsed(), None)
}

/// Polls Check every `interval` until interrupted; returns the last exit code.
pub async fn poll(probe: &Probe, interval: Duration, stop: impl Future<Output = ()>) -> u8 {
    let client = match connect(probe).await {
        Ok(client) => client,
        Err(code) => return code,
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut code = RPC_FAILURE;
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
pub async fn watch(probe: &Probe, stop: impl Future<Output = ()>) -> u8 {
    let client = match connect(probe).await {
        Ok(client) => client,
        Err(code) => return code,
    };
    let mut code = RPC_FAILURE;
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

async fn connect(probe: &Probe) -> Result<NativeClient, u8> {
    match native::connect(&probe.target, probe.options.clone()).await {
        Ok(client) => Ok(client),
        Err(error @ ConnectError::Invalid(_)) => {
            fail(probe, "bad arguments", &error.to_string(), None);
            Err(BAD_ARGUMENTS)
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
            Err(CONNECTION_FAILURE)
        }
    }
}

fn exit_code(status: ServingStatus) -> u8 {
    if status == ServingStatus::Serving {
        SERVING
    } else {
        NOT_SERVING
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
) -> u8 {
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
            RPC_FAILURE
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
