//! The config file: loaded at start, re-read on SIGHUP without dropping watchers;
//! a bad file is reported and the running config stays.

use futures_util::StreamExt;
use healthweb_proto::pb::health_check_response::ServingStatus;
use nix::sys::signal::Signal;

use crate::util::{Binary, client, req, run_cli, run_cli_env, status_of, within};

#[tokio::test]
async fn sighup_reloads_without_dropping_watchers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("healthweb.toml");
    std::fs::write(
        &path,
        "[services]\npayments = \"SERVING\"\nsearch = \"SERVING\"\n",
    )
    .unwrap();
    let server = Binary::serve(&[
        "--config",
        path.to_str().unwrap(),
        "--service",
        "flag=NOT_SERVING",
    ]);
    let mut client = client(&server.url()).await;
    let mut payments = client.watch(req("payments")).await.unwrap().into_inner();
    let mut search = client.watch(req("search")).await.unwrap().into_inner();
    let next = async |s: &mut tonic::Streaming<_>| -> ServingStatus {
        let msg: healthweb_proto::pb::HealthCheckResponse =
            within(s.next()).await.unwrap().unwrap();
        status_of(msg.status)
    };
    assert_eq!(next(&mut payments).await, ServingStatus::Serving);
    assert_eq!(next(&mut search).await, ServingStatus::Serving);

    std::fs::write(&path, "[services]\npayments = \"NOT_SERVING\"\n").unwrap();
    server.signal(Signal::SIGHUP);
    assert_eq!(next(&mut payments).await, ServingStatus::NotServing);
    // Dropped from the file: removed, so watchers see SERVICE_UNKNOWN.
    assert_eq!(next(&mut search).await, ServingStatus::ServiceUnknown);
    assert_eq!(
        client.check(req("search")).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    // Flags stay as they were.
    let flag = client.check(req("flag")).await.unwrap().into_inner();
    assert_eq!(status_of(flag.status), ServingStatus::NotServing);

    std::fs::write(&path, "[services]\npayments = \"SERVNG\"\n").unwrap();
    server.signal(Signal::SIGHUP);
    let line = server.wait_for_log("config reload failed");
    assert!(line.contains("line 2"), "{line}");
    server.wait_for_log("expected SERVING, NOT_SERVING or UNKNOWN");
    let still = client.check(req("payments")).await.unwrap().into_inner();
    assert_eq!(status_of(still.status), ServingStatus::NotServing);

    std::fs::write(&path, "[services]\npayments = \"SERVING\"\n").unwrap();
    server.signal(Signal::SIGHUP);
    assert_eq!(next(&mut payments).await, ServingStatus::Serving);
}

#[test]
fn a_bad_file_at_start_is_an_error_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[services]\na = 3\n").unwrap();
    let (code, _, stderr) = serve_with_config(&path);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("invalid config file") && stderr.contains("line 2"),
        "{stderr}"
    );
    let (code, _, stderr) = run_cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        "/nonexistent.toml",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot read config file /nonexistent.toml"),
        "{stderr}"
    );
}

#[tokio::test]
async fn flags_come_from_the_environment_too() {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_healthweb"));
    cmd.args(["serve", "--help"]);
    let help = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
    for var in [
        "HEALTHWEB_LISTEN",
        "HEALTHWEB_SERVICE",
        "HEALTHWEB_CONFIG",
        "HEALTHWEB_SHUTDOWN_GRACE",
        "HEALTHWEB_CORS_ORIGIN",
    ] {
        assert!(help.contains(var), "--help does not name {var}");
    }
    let (code, _, stderr) = run_cli_env(&["serve"], &[("HEALTHWEB_LISTEN", "not-an-address")]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not-an-address"), "{stderr}");
}

#[tokio::test]
async fn sighup_adds_and_removes_upstreams() {
    let upstream = Binary::serve(&["--service", "pay=SERVING"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("healthweb.toml");
    std::fs::write(&path, "[services]\nlocal = \"SERVING\"\n").unwrap();
    let server = Binary::serve(&["--config", path.to_str().unwrap()]);
    let mut client = client(&server.url()).await;
    let mut watch = client.watch(req("payments")).await.unwrap().into_inner();
    let mut next = async || -> ServingStatus {
        let msg: healthweb_proto::pb::HealthCheckResponse =
            within(watch.next()).await.unwrap().unwrap();
        status_of(msg.status)
    };
    assert_eq!(next().await, ServingStatus::ServiceUnknown);

    let entry = format!(
        "[services]\nlocal = \"SERVING\"\n[[upstream]]\nname = \"payments\"\ntarget = \"{}\"\nservice = \"pay\"\ninterval = \"200ms\"\n",
        upstream.url()
    );
    std::fs::write(&path, &entry).unwrap();
    server.signal(Signal::SIGHUP);
    // Added: UNKNOWN until the first answer, then what the upstream says.
    let mut seen = next().await;
    if seen == ServingStatus::Unknown {
        seen = next().await;
    }
    assert_eq!(seen, ServingStatus::Serving);

    std::fs::write(&path, "[services]\nlocal = \"SERVING\"\n").unwrap();
    server.signal(Signal::SIGHUP);
    assert_eq!(next().await, ServingStatus::ServiceUnknown);
    drop(watch);
    assert_eq!(
        client.check(req("payments")).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    let local = client.check(req("local")).await.unwrap().into_inner();
    assert_eq!(status_of(local.status), ServingStatus::Serving);
}

#[test]
fn bad_upstream_entries_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    for (entry, needle) in [
        (
            "name = \"a\"\ntarget = \"10.0.0.5:50051\"",
            "must start with http:// or https://",
        ),
        (
            "name = \"a\"\ntarget = \"http://x\"\nprotocol = \"smtp\"",
            "unknown variant `smtp`",
        ),
        (
            "name = \"a\"\ntarget = \"http://x\"\ninterval = \"soon\"",
            "bad duration \"soon\"",
        ),
        (
            "name = \"a\"\ntarget = \"http://x\"\nunhealthy_threshold = 0",
            "thresholds count from 1",
        ),
    ] {
        std::fs::write(&path, format!("[[upstream]]\n{entry}\n")).unwrap();
        let (code, _, stderr) = serve_with_config(&path);
        assert_eq!(code, 1, "{entry}");
        assert!(stderr.contains(needle), "{entry}: {stderr}");
    }
}

/// Runs `healthweb serve` with the config file `path`; for files it must refuse.
fn serve_with_config(path: &std::path::Path) -> (i32, String, String) {
    run_cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        path.to_str().unwrap(),
    ])
}

/// Every setting is checked before the port is announced: a bad one is an error
/// that says what to write instead, exit code 1, and no `listening on` line.
#[test]
fn bad_settings_are_refused_before_listening() {
    let missing = "/nonexistent/healthweb.toml";
    for (flags, needle) in [
        (
            &["--cors-origin", "app.example.com"][..],
            "--cors-origin \"app.example.com\" is not an origin: write scheme://host[:port]",
        ),
        (
            &["--cors-origin", "https://app.example.com/"],
            "with no path",
        ),
        (
            &["--cors-origin", "*", "--cors-allow-header", "x y"],
            "--cors-allow-header \"x y\" is not a header name",
        ),
        // Refused even before any origin is named: the typo is there all the same.
        (
            &["--cors-allow-header", "x y"],
            "--cors-allow-header \"x y\" is not a header name",
        ),
        (
            &["--config", missing],
            "cannot read config file /nonexistent/healthweb.toml",
        ),
        (
            &[
                "--tls-cert",
                "/nonexistent.pem",
                "--tls-key",
                "/nonexistent.key",
            ],
            "cannot load certificate from /nonexistent.pem",
        ),
    ] {
        let args = [&["serve", "--listen", "127.0.0.1:0"][..], flags].concat();
        let (code, _, stderr) = run_cli(&args);
        assert_eq!(code, 1, "{flags:?}: {stderr}");
        assert!(stderr.contains(needle), "{flags:?}: {stderr}");
        assert!(!stderr.contains("listening on"), "{flags:?}: {stderr}");
    }
}

/// A `HEALTHWEB_LOG` that is no filter is reported, the server serves at info, and
/// its log lines, read through a pipe as a log collector reads them, carry no
/// colour codes.
#[tokio::test]
async fn a_bad_log_filter_is_reported_and_the_server_serves() {
    let server = Binary::serve_with(&["--history", "memory"], |command| {
        command.env("HEALTHWEB_LOG", "h2=loud");
    });
    let warning = server
        .before
        .iter()
        .find(|line| line.contains("HEALTHWEB_LOG"))
        .unwrap_or_else(|| panic!("no word of HEALTHWEB_LOG in {:#?}", server.before));
    assert!(
        warning.contains("WARN") && warning.contains(r#""h2=loud" is not a log filter"#),
        "{warning}"
    );
    assert!(
        server.before.iter().all(|line| !line.contains('\x1b')),
        "colour codes in piped logs: {:#?}",
        server.before
    );
    let mut client = client(&server.url()).await;
    let reply = within(client.check(req(""))).await.unwrap().into_inner();
    assert_eq!(status_of(reply.status), ServingStatus::Serving);
}
