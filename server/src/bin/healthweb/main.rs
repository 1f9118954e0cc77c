//! `healthweb`: serve the gRPC health protocol to every caller on one port,
//! change statuses at run time, and probe any gRPC health server.
//!
//! This binary only reads arguments, sets up logging and signals, and calls the
//! library; exit codes are grpc-health-probe's ([`exit::Exit`]).
//!
//! # Layout
//! - `serve`: `healthweb serve`, flags to [`healthweb_server::Settings`].
//! - `check`: `healthweb check`, the probe; also what the binary runs when it is
//!   called `grpc_health_probe`. `go_flags`: its flags in Go's spelling too.
//! - `admin`: `healthweb set` and `healthweb remove`, the admin API's client.
//! - `alert`: `healthweb alert test`, a test notification to a receiver.
//! - `signals`: SIGTERM, ctrl-c and SIGHUP.
//! - `exit`: the exit codes.

mod admin;
mod alert;
mod check;
mod exit;
mod go_flags;
mod serve;
mod signals;

use std::{ffi::OsString, io::IsTerminal, path::Path, process::ExitCode, time::Duration};

use clap::{CommandFactory, Parser, Subcommand};
use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};

use crate::exit::Exit;

#[derive(Parser)]
#[command(name = "healthweb", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve grpc.health.v1.Health over gRPC, gRPC-Web, /healthz and the status page.
    Serve(Box<serve::ServeArgs>),
    /// Set a service's status through a running server's admin API.
    Set(admin::SetArgs),
    /// Remove a service through a running server's admin API (Check then answers NOT_FOUND).
    Remove(admin::RemoveArgs),
    /// Probe a gRPC health server, natively or over gRPC-Web, like grpc-health-probe
    /// (whose flags it takes too: -addr=HOST:PORT, -rpc-timeout, -tls-ca-cert...).
    /// Exit codes: 0 SERVING, 1 bad arguments, 2 connection failure, 3 RPC failure,
    /// 4 not SERVING.
    Check(Box<check::CheckArgs>),
    /// Alert receivers: `alert test RECEIVER --config FILE` sends a test notification.
    #[command(subcommand)]
    Alert(alert::AlertCommand),
}

/// jemalloc, with a background thread that returns freed pages within about a second
/// (`JEMALLOC_SYS_WITH_MALLOC_CONF` in `.cargo/config.toml`): glibc's malloc kept
/// ~60 MiB after 10k Watch streams had closed, and mimalloc all of it (BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Writes one line to stderr with a single `write`, so a reader never sees half of
/// it. `eprintln!` writes each piece of its format separately (`listening on `,
/// the scheme, each octet of the address, the port...), and a test that read the
/// pipe as it came once took `http://127.0.0.` for the whole address.
pub fn say(line: impl std::fmt::Display) {
    use std::io::Write as _;
    let line = format!("{line}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The command line for clap: `check` first when the binary is called
/// `grpc_health_probe` (a symlink in its place keeps every manifest as it is), and
/// `check`'s flags in clap's spelling whichever way they were written.
fn args() -> Vec<OsString> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let called = args.first().and_then(|a| Path::new(a).file_name());
    if called.is_some_and(|name| name == "grpc_health_probe" || name == "grpc-health-probe") {
        args.insert(1, "check".into());
    }
    if args.get(1).is_some_and(|a| a == "check") {
        let mut cli = Cli::command();
        cli.build();
        let check = cli.find_subcommand("check").expect("check is a subcommand");
        let rest = args.split_off(2);
        args.extend(go_flags::respell(check, rest));
    }
    args
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(args()) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                Exit::BadArguments.into()
            } else {
                Exit::Success.into()
            };
        }
    };
    // `HEALTHWEB_LOG`: a level, then target=level pairs (`warn,healthweb=debug`); a
    // plain target filter, not EnvFilter, whose regular expressions cost the binary
    // 0.3 MB.
    let spec = std::env::var("HEALTHWEB_LOG").ok();
    let parsed = spec.as_deref().map(str::parse::<Targets>);
    let filter = match &parsed {
        Some(Ok(filter)) => filter.clone(),
        _ => Targets::new().with_default(tracing::Level::INFO),
    };
    // Colours for a person at a terminal only: log collectors (`kubectl logs`,
    // journald, files) would keep the escape codes. NO_COLOR is honoured.
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi),
        )
        .with(filter)
        .init();
    if let (Some(spec), Some(Err(error))) = (&spec, parsed) {
        tracing::warn!("HEALTHWEB_LOG={spec:?} is not a log filter ({error}); logging at info");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            say(format_args!(
                "healthweb: cannot start the async runtime: {error}"
            ));
            return ExitCode::FAILURE;
        }
    };
    let exit = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Set(args) => admin::set(args).await,
            Command::Remove(args) => admin::remove(args).await,
            Command::Check(args) => check::run(*args).await,
            Command::Alert(command) => alert::run(command).await,
        }
    });
    // Connections past the grace are dropped with the runtime, not waited for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    exit.into()
}
