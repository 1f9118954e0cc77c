//! History against the real `healthweb serve`: changes made through the admin API
//! come back from `healthweb.v1.History` over native gRPC, gRPC-Web and Python
//! grpcio; they survive a restart and a `kill -9`; they move the uptime; a
//! flapping service keeps the file small; files that cannot be used are refused
//! (or moved aside). Also the badges (valid SVG, the status in words) and
//! `/metrics` (parsed by prometheus-client's own parser, moving after Checks).

use std::{process::Command, time::Duration};

use healthweb_proto::{
    history::{
        Cause, TransitionsRequest, TransitionsResponse, UptimeRequest,
        history_client::HistoryClient,
    },
    pb::health_check_response::ServingStatus,
};
use healthweb_server::history::Location;
use http::Method;
use nix::sys::signal::Signal;
use tonic::transport::Channel;

use crate::{
    interop::python,
    util::{Binary, Http, TestServer, client, raw, req, run_cli, web_unary, within},
};

async fn history(url: &str) -> HistoryClient<Channel> {
    HistoryClient::new(
        Channel::from_shared(url.to_owned())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
}

async fn transitions(client: &mut HistoryClient<Channel>, service: &str) -> TransitionsResponse {
    client
        .transitions(TransitionsRequest {
            service: service.into(),
            ..TransitionsRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// Waits until `service` has at least `n` transitions recorded (written once a second).
async fn recorded(
    client: &mut HistoryClient<Channel>,
    service: &str,
    n: usize,
) -> TransitionsResponse {
    within(async {
        loop {
            let got = transitions(client, service).await;
            if got.transitions.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

fn set(server: &Binary, service: &str, status: &str) {
    let admin = server.admin.unwrap().to_string();
    let (code, _, err) = run_cli(&["set", "--admin", &admin, service, status]);
    assert_eq!(code, 0, "{err}");
}

const NOT: i32 = ServingStatus::NotServing as i32;
const SERVING: i32 = ServingStatus::Serving as i32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_come_back_over_grpc_grpc_web_and_grpcio() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.db");
    let server = Binary::serve(&[
        "--admin-listen",
        "127.0.0.1:0",
        "--history",
        file.to_str().unwrap(),
        "--service",
        "payments=SERVING",
    ]);
    set(&server, "payments", "NOT_SERVING");
    set(&server, "payments", "SERVING");
    let mut history = history(&server.url()).await;
    let got = recorded(&mut history, "payments", 3).await;
    let seen: Vec<_> = got
        .transitions
        .iter()
        .map(|t| (t.from, t.to, t.cause))
        .collect();
    // Newest first: the two admin changes, then the configured start.
    let gone = ServingStatus::ServiceUnknown as i32;
    assert_eq!(
        seen,
        [
            (NOT, SERVING, Cause::Admin as i32),
            (SERVING, NOT, Cause::Admin as i32),
            (gone, SERVING, Cause::Config as i32),
        ]
    );
    assert!(!got.truncated);

    // The same over gRPC-Web, as a browser sends it.
    let url = format!("{}/healthweb.v1.History/Transitions", server.url());
    let request = TransitionsRequest {
        service: "payments".into(),
        limit: 2,
        ..TransitionsRequest::default()
    };
    let web: TransitionsResponse = web_unary(&url, &request).await;
    assert_eq!(web.transitions.len(), 2);
    assert!(web.truncated, "a limit of 2 leaves the third out");

    // And from grpcio, with the types from reflection only.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/interop/grpcio_history.py"
    );
    let out = Command::new(python())
        .args([script, &server.addr.to_string(), "payments"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "transition NOT_SERVING SERVING CAUSE_ADMIN 1",
            "transition SERVING NOT_SERVING CAUSE_ADMIN 1",
            "transition SERVICE_UNKNOWN SERVING CAUSE_CONFIG 1",
        ]
    );
    assert!(
        lines[3].starts_with("uptime ") && lines[3].ends_with(" 48"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_a_restart_and_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.db");
    let file = file.to_str().unwrap();
    let args = ["--admin-listen", "127.0.0.1:0", "--history", file];
    let mut first = Binary::serve(&args);
    set(&first, "db", "NOT_SERVING");
    let mut client = history(&first.url()).await;
    // Once History shows it, it is committed: then the process is killed outright.
    recorded(&mut client, "db", 1).await;
    first.signal(Signal::SIGKILL);
    first.wait(Duration::from_secs(10)).expect("killed");

    let mut second = Binary::serve(&args);
    let mut client = history(&second.url()).await;
    let got = transitions(&mut client, "db").await;
    let seen: Vec<_> = got.transitions.iter().map(|t| (t.to, t.cause)).collect();
    // The change survived, and so did the kill: "db" was NOT_SERVING until the
    // last sign of life, and unknown from then on.
    let unknown = ServingStatus::Unknown as i32;
    assert_eq!(
        seen,
        [
            (unknown, Cause::UncleanStop as i32),
            (NOT, Cause::Admin as i32)
        ],
        "{got:?}"
    );
    let whole = transitions(&mut client, "").await;
    let causes: Vec<_> = whole.transitions.iter().map(|t| t.cause).collect();
    assert!(causes.contains(&(Cause::UncleanStop as i32)), "{whole:?}");

    // A clean stop is on record as the shutdown.
    second.signal(Signal::SIGTERM);
    assert_eq!(
        second.wait(Duration::from_secs(20)).unwrap().code(),
        Some(0)
    );
    let third = Binary::serve(&args);
    let mut client = history(&third.url()).await;
    let whole = transitions(&mut client, "").await;
    let causes: Vec<_> = whole.transitions.iter().map(|t| t.cause).collect();
    assert!(causes.contains(&(Cause::Shutdown as i32)), "{whole:?}");
    assert_eq!(
        causes
            .iter()
            .filter(|c| **c == Cause::UncleanStop as i32)
            .count(),
        1,
        "only the kill was unclean: {whole:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uptime_moves_with_the_changes() {
    let server = TestServer::start().await;
    server.registry.set("api", ServingStatus::Serving).unwrap();
    let mut client = history(&server.url()).await;
    let uptime = |client: &mut HistoryClient<Channel>| {
        let mut client = client.clone();
        async move {
            client
                .uptime(UptimeRequest {
                    service: "api".into(),
                    ..UptimeRequest::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    recorded(&mut client, "api", 1).await;
    let before = uptime(&mut client).await;
    assert_eq!(before.day.unwrap().serving, 1.0);
    assert_eq!(before.buckets.len(), 48);
    server
        .registry
        .set("api", ServingStatus::NotServing)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.registry.set("api", ServingStatus::Serving).unwrap();
    recorded(&mut client, "api", 3).await;
    let after = uptime(&mut client).await;
    let day = after.day.unwrap();
    assert!(day.serving < 1.0 && day.serving > 0.0, "{day:?}");
    assert_eq!(after.current, SERVING);
    // The last two half hours: a part's start may have fallen among the changes.
    let recent = &after.buckets[46..];
    assert!(
        recent.iter().any(|part| part.worst == NOT),
        "the bar shows the outage: {recent:?}"
    );
    let changes: u32 = recent.iter().map(|part| part.changes).sum();
    assert_eq!(changes, 3, "{recent:?}");
    // Buckets before the history began say so.
    assert_eq!(after.buckets[0].worst, ServingStatus::ServiceUnknown as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_service_keeps_the_file_small() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.db");
    let path = file.clone();
    let server = TestServer::with(|s| s.history.location = Location::File(path)).await;
    // 20 000 changes as fast as the registry takes them (well over 1000 a second).
    let flips = 20_000u32;
    let started = std::time::Instant::now();
    for i in 0..flips {
        let status = if i % 2 == 0 {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        server.registry.set("flap", status).unwrap();
    }
    let seconds = started.elapsed().as_secs() + 1;
    let mut client = history(&server.url()).await;
    // Every change is accounted for, folded into at most 8 rows a second.
    let got = within(async {
        loop {
            let got = transitions(&mut client, "flap").await;
            if got.transitions.iter().map(|t| t.count).sum::<u32>() == flips {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let rows = got.transitions.len() as u64;
    assert!(
        rows <= 8 * (seconds + 1),
        "{rows} rows for {seconds} s of flapping"
    );
    let folded = got.transitions.iter().find(|t| t.count > 1).unwrap();
    assert_eq!(folded.worst, NOT);
    assert!(folded.until_unix_ms >= folded.at_unix_ms);
    // The file stays small: well under a megabyte for all of it.
    let size = std::fs::metadata(&file).unwrap().len()
        + std::fs::metadata(dir.path().join("history.db-wal")).map_or(0, |m| m.len());
    assert!(size < 1 << 20, "{size} bytes");
}

fn refused(args: &[&str]) -> String {
    let (code, _, stderr) = run_cli(&[&["serve", "--listen", "127.0.0.1:0"][..], args].concat());
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    stderr
}

#[test]
fn unusable_history_files_are_refused_or_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();

    // Not a database at all.
    let corrupt = path("corrupt.db");
    std::fs::write(&corrupt, vec![0x5a; 64 * 1024]).unwrap();
    let err = refused(&["--history", &corrupt]);
    assert!(err.contains("is not a usable history file"), "{err}");
    assert_eq!(
        std::fs::read(&corrupt).unwrap(),
        vec![0x5a; 64 * 1024],
        "left as it was"
    );
    // With --history-move-aside, it is renamed and a fresh one starts.
    let mut server = Binary::serve(&["--history", &corrupt, "--history-move-aside"]);
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("corrupt.db.unusable-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    server.signal(Signal::SIGTERM);
    server.wait(Duration::from_secs(20)).unwrap();

    // From a newer healthweb.
    let newer = path("newer.db");
    let db = rusqlite::Connection::open(&newer).unwrap();
    db.pragma_update(None, "user_version", 99).unwrap();
    drop(db);
    let err = refused(&["--history", &newer]);
    assert!(
        err.contains("written by a newer healthweb (history schema 99"),
        "{err}"
    );

    // Held by another healthweb.
    let shared = path("shared.db");
    let _first = Binary::serve(&["--history", &shared]);
    let err = refused(&["--history", &shared]);
    assert!(err.contains("in use by another process"), "{err}");
}

#[tokio::test]
async fn bad_ranges_and_unknown_services() {
    let server = TestServer::start().await;
    let mut client = history(&server.url()).await;
    let code =
        |r: Result<tonic::Response<TransitionsResponse>, tonic::Status>| r.unwrap_err().code();
    let ask = |service: &str, since, until, limit| TransitionsRequest {
        service: service.into(),
        since_unix_ms: since,
        until_unix_ms: until,
        limit,
    };
    assert_eq!(
        code(client.transitions(ask("nobody", 0, 0, 0)).await),
        tonic::Code::NotFound
    );
    for bad in [ask("", 5, 1, 0), ask("", -1, 0, 0), ask("", 0, 0, 5000)] {
        assert_eq!(
            code(client.transitions(bad.clone()).await),
            tonic::Code::InvalidArgument,
            "{bad:?}"
        );
    }
    let err = client
        .uptime(UptimeRequest {
            service: String::new(),
            buckets: 100_000,
            span_seconds: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

/// Fetches `path` from the server: (status, headers, body).
async fn get(url: &str) -> (u16, http::HeaderMap, String) {
    let r = raw(Http::H1, url, Method::GET, &[], "").await;
    (
        r.status.as_u16(),
        r.headers,
        String::from_utf8_lossy(&r.body).into_owned(),
    )
}

#[tokio::test]
async fn badges_are_valid_svg_with_the_status_in_words() {
    let server = TestServer::serving([
        ("payments", ServingStatus::Serving),
        ("db", ServingStatus::NotServing),
    ])
    .await;
    for (service, code, words) in [
        ("payments", 200, "payments: serving"),
        ("db", 200, "db: not serving"),
        ("", 200, "whole server: serving"),
        ("nobody", 404, "nobody: not found"),
    ] {
        let (status, headers, svg) = get(&format!("{}/badge/{service}.svg", server.url())).await;
        assert_eq!(status, code, "{service}");
        assert_eq!(headers["content-type"], "image/svg+xml");
        assert_eq!(headers["cache-control"], "public, max-age=5");
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert!(
            root.attribute("aria-label").unwrap().starts_with(words),
            "{svg}"
        );
        let title = root.children().find(|n| n.has_tag_name("title")).unwrap();
        assert!(title.text().unwrap().starts_with(words));
    }
    let (status, _, _) = get(&format!("{}/badge/payments.png", server.url())).await;
    assert_eq!(status, 404);
}

/// `/metrics`, parsed by prometheus-client's OpenMetrics parser.
fn parse_metrics(text: &str) -> Vec<String> {
    use std::io::Write;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/interop/metrics_parse.py"
    );
    let mut child = Command::new(python())
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn sample(samples: &[String], prefix: &str) -> f64 {
    samples
        .iter()
        .find_map(|s| s.strip_prefix(prefix)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_with_a_real_parser_and_move_after_checks() {
    let server = TestServer::serving([("api", ServingStatus::NotServing)]).await;
    let (status, headers, before) = get(&format!("{}/metrics", server.url())).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let before = parse_metrics(&before);
    let ok = r#"grpc_server_handled_total{grpc_code="OK",grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"}"#;
    let not_found = r#"grpc_server_handled_total{grpc_code="NotFound",grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"}"#;
    let started = r#"grpc_server_started_total{grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"}"#;
    let mut health = client(&server.url()).await;
    for _ in 0..3 {
        health.check(req("api")).await.unwrap();
    }
    health.check(req("nobody")).await.unwrap_err();
    // An oversize message: the client gets RESOURCE_EXHAUSTED, and so does /metrics.
    let oversize = health.check(req(&"x".repeat(20_000))).await.unwrap_err();
    assert_eq!(
        oversize.code(),
        tonic::Code::ResourceExhausted,
        "{oversize:?}"
    );
    let _watch = health.watch(req("api")).await.unwrap();
    let (_, _, after) = get(&format!("{}/metrics", server.url())).await;
    let after = parse_metrics(&after);
    assert_eq!(sample(&after, ok) - sample(&before, ok), 3.0, "{after:#?}");
    assert_eq!(sample(&after, not_found) - sample(&before, not_found), 1.0);
    assert_eq!(sample(&after, started) - sample(&before, started), 5.0);
    let code = |code: &str| {
        format!(
            r#"grpc_server_handled_total{{grpc_code="{code}",grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"}}"#
        )
    };
    let exhausted = code("ResourceExhausted");
    assert_eq!(
        sample(&after, &exhausted) - sample(&before, &exhausted),
        1.0
    );
    assert_eq!(sample(&after, &code("OutOfRange")), 0.0, "{after:#?}");
    for line in [
        r#"healthweb_service_status{service="api",status="NOT_SERVING"} 1"#,
        r#"healthweb_service_status{service="api",status="SERVING"} 0"#,
        r#"healthweb_status_transitions_total{service="api"} 1"#,
        r#"healthweb_watch_streams{} 1"#,
        r#"healthweb_watch_all_streams{} 0"#,
    ] {
        assert!(after.iter().any(|s| s == line), "{line} in {after:#?}");
    }
    assert!(
        after
            .iter()
            .any(|s| s.starts_with("grpc_server_handling_seconds_bucket{")),
        "{after:#?}"
    );
}
