//! `healthweb check` against the real healthweb and against a grpcio health
//! server: every exit code, native gRPC and gRPC-Web, TLS and mTLS, and --watch;
//! and as a drop-in grpc-health-probe: its README's command lines, its flags and
//! messages, `-rpc-header` and `-gzip` reaching servers that require them.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Command, Stdio},
};

use nix::sys::signal::Signal;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Status, codec::CompressionEncoding, service::interceptor::InterceptedService};

use crate::{
    interop::Peer,
    tls::Pki,
    util::{Binary, LIMIT, lines, run_cli},
};

const WIRES: [&[&str]; 3] = [&[], &["--grpc-web"], &["--grpc-web-text"]];

fn check(addr: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["check", "--addr", addr];
    args.extend_from_slice(extra);
    run_cli(&args)
}

#[test]
fn exit_codes_against_healthweb_on_every_wire() {
    let server = Binary::serve(&["--service", "db=NOT_SERVING"]);
    let url = server.url();
    for wire in WIRES {
        fn with<'a>(wire: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
            [wire, more].concat()
        }
        assert_eq!(
            check(&url, &with(wire, &[])),
            (0, "status: SERVING\n".into(), String::new()),
            "{wire:?}"
        );
        let (code, out, err) = check(&url, &with(wire, &["--service", "db"]));
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (
                4,
                "status: NOT_SERVING\n",
                "service unhealthy (responded with \"NOT_SERVING\")\n"
            ),
            "{wire:?}"
        );
        let (code, _, err) = check(&url, &with(wire, &["--service", "nope"]));
        assert_eq!(code, 3, "{wire:?}");
        assert!(err.contains("NOT_FOUND: unknown service \"nope\""), "{err}");
    }
    let (code, out, _) = check(&url, &["--service", "db", "--output", "json"]);
    assert_eq!(code, 4);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["status"], "NOT_SERVING");
    assert_eq!(json["service"], "db");
    assert!(json["latency_ms"].as_f64().is_some());
}

#[test]
fn connection_failures_bad_arguments_and_deadlines() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for wire in WIRES {
        let (code, _, err) = check(&format!("http://{free}"), wire);
        assert_eq!(code, 2, "{wire:?}: {err}");
        assert!(
            err.starts_with(&format!(
                "error: failed to connect service at \"http://{free}\": "
            )) && err.contains("refused"),
            "{err}"
        );
    }
    let (code, _, err) = check("ftp://127.0.0.1:8080", &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("use http://HOST:PORT or https://HOST:PORT"),
        "{err}"
    );
    let (code, _, _) = run_cli(&["check"]);
    assert_eq!(code, 1);
    let (code, _, err) = check("http://127.0.0.1:1", &["--header", "no-colon"]);
    assert_eq!(code, 1);
    assert!(err.contains("NAME:VALUE"), "{err}");

    // A server that accepts and never answers: the deadline, not a hang.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", hung.local_addr().unwrap());
    for wire in WIRES {
        let (code, _, err) = check(&url, &[wire, &["--timeout", "300ms"]].concat());
        assert_eq!(code, 3, "{wire:?}: {err}");
        assert!(
            err.starts_with("timeout: health rpc did not complete within 300ms"),
            "{err}"
        );
    }
    // Over TLS the handshake never ends: that is the connect timeout.
    let (code, _, err) = run_cli(&[
        "check",
        &format!("-addr={}", hung.local_addr().unwrap()),
        "-tls",
        "-connect-timeout=300ms",
    ]);
    assert_eq!(code, 2, "{err}");
    let https = format!("https://{}", hung.local_addr().unwrap());
    assert!(
        err.starts_with(&format!(
            "timeout: failed to connect service {https:?} within 300ms"
        )),
        "{err}"
    );
    drop(hung);
}

#[test]
fn exit_codes_against_grpcio() {
    let mut peer = Peer::start(&[]);
    peer.set("db", "NOT_SERVING");
    let url = format!("http://127.0.0.1:{}", peer.port);
    assert_eq!(check(&url, &[]).0, 0);
    assert_eq!(check(&url, &["--service", "db"]).0, 4);
    let (code, _, err) = check(&url, &["--service", "nope"]);
    assert_eq!(code, 3);
    assert!(err.contains("NOT_FOUND"), "{err}");
    // grpcio has no gRPC-Web: an HTTP/1.1 request fails as an RPC, not a connection.
    assert_eq!(check(&url, &["--grpc-web"]).0, 3);
}

#[test]
fn tls_and_mtls_against_healthweb_and_grpcio() {
    let pki = Pki::new();
    let ca = pki.path("ca.pem");
    let (client_cert, client_key) = (pki.path("client.pem"), pki.path("client.key"));
    let healthweb = pki.serve(&["--tls-client-ca", &ca]);
    let peer = Peer::start(&[&pki.path("server.pem"), &pki.path("server.key"), &ca]);
    let mtls = [
        "--tls-ca",
        &ca,
        "--tls-cert",
        &client_cert,
        "--tls-key",
        &client_key,
    ];
    for port in [healthweb.addr.port(), peer.port] {
        let url = format!("https://localhost:{port}");
        assert_eq!(check(&url, &mtls).0, 0, "mTLS to {port}");
        // By IP, naming the certificate's host.
        let by_ip = format!("https://127.0.0.1:{port}");
        assert_eq!(
            check(
                &by_ip,
                &[&mtls[..], &["--tls-server-name", "localhost"]].concat()
            )
            .0,
            0
        );
        // No client certificate: the handshake (or the first call) is refused.
        let (code, _, err) = check(&url, &["--tls-ca", &ca]);
        assert!(code == 2 || code == 3, "{port}: {code} {err}");
        // A CA that did not sign the server.
        let other = Pki::new();
        let (code, _, err) = check(&url, &["--tls-ca", &other.path("ca.pem")]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("TLS handshake failed"), "{err}");
        assert_eq!(
            check(&url, &[&mtls[2..], &["--tls-no-verify"]].concat()).0,
            0
        );
    }
    let url = format!("https://localhost:{}", healthweb.addr.port());
    for wire in &WIRES[1..] {
        assert_eq!(check(&url, &[&mtls[..], wire].concat()).0, 0, "{wire:?}");
    }
    let (code, _, err) = check(&url, &["--tls-ca", "/nonexistent.pem"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot load CA from /nonexistent.pem"),
        "{err}"
    );
}

#[test]
fn watch_prints_each_change_with_its_time() {
    let server = Binary::serve(&["--service", "db=SERVING", "--admin-listen", "127.0.0.1:0"]);
    let admin = server.admin.unwrap().to_string();
    let mut watch = Command::new(env!("CARGO_BIN_EXE_healthweb"))
        .args([
            "check",
            "--addr",
            &server.url(),
            "--service",
            "db",
            "--watch",
            "--grpc-web",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = lines.recv_timeout(LIMIT).unwrap();
    assert!(first.ends_with("Z SERVING"), "{first}");
    assert_eq!(
        run_cli(&["set", "--admin", &admin, "db", "NOT_SERVING"]).0,
        0
    );
    let second = lines.recv_timeout(LIMIT).unwrap();
    let (time, word) = second.split_once(' ').unwrap();
    assert_eq!(word, "NOT_SERVING");
    // RFC 3339 with milliseconds, UTC: 2026-11-23T21:53:49.014Z
    assert_eq!(time.len(), 24, "{time}");
    assert!(time.as_bytes()[10] == b'T' && time.ends_with('Z'), "{time}");
    let pid = nix::unistd::Pid::from_raw(watch.id() as i32);
    nix::sys::signal::kill(pid, Signal::SIGINT).unwrap();
    let status = watch.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(4),
        "the last status seen was NOT_SERVING"
    );
}

#[test]
fn interval_polls_and_prints_every_result() {
    let server = Binary::serve(&[]);
    let mut poll = Command::new(env!("CARGO_BIN_EXE_healthweb"))
        .args([
            "check",
            "--addr",
            &server.url(),
            "--interval",
            "100ms",
            "--output",
            "json",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(poll.stdout.take().unwrap());
    for _ in 0..3 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(json["status"], "SERVING");
    }
    let pid = nix::unistd::Pid::from_raw(poll.id() as i32);
    nix::sys::signal::kill(pid, Signal::SIGINT).unwrap();
    assert_eq!(poll.wait().unwrap().code(), Some(0));
}

/// `healthweb check ARGS`, ARGS being `line` split at spaces, `{name}` filled in.
fn probe_line(line: &str, vars: &[(&str, String)]) -> (i32, String, String) {
    let mut line = line.to_owned();
    for (name, value) in vars {
        line = line.replace(&format!("{{{name}}}"), value);
    }
    let args: Vec<&str> = std::iter::once("check")
        .chain(line.split_whitespace())
        .collect();
    run_cli(&args)
}

/// What grpc-health-probe prints for each exit code, healthweb's answer on stdout.
fn assert_says(code: i32, (got, out, err): (i32, String, String), line: &str) {
    assert_eq!(got, code, "{line}: {out}{err}");
    match code {
        0 => assert_eq!(
            (out.as_str(), err.as_str()),
            ("status: SERVING\n", ""),
            "{line}"
        ),
        2 => assert!(
            err.starts_with("error: failed to connect service at "),
            "{line}: {err}"
        ),
        3 => assert!(
            err.starts_with("error: health rpc failed: "),
            "{line}: {err}"
        ),
        4 => assert_eq!(
            err, "service unhealthy (responded with \"NOT_SERVING\")\n",
            "{line}"
        ),
        _ => unreachable!(),
    }
}

/// grpc-health-probe's documented command lines, with `healthweb check` in its
/// place: its README's examples, its Kubernetes exec probe, its TLS example with
/// a CA, a server-name override and two `-rpc-header`s, then mTLS and each of its
/// flags, against healthweb and against grpcio. The lines are as written there but
/// for the port and the files.
#[test]
fn grpc_health_probe_command_lines_against_healthweb_and_grpcio() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pki = Pki::new();
    let other = Pki::new();
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("server.pem"),
        pki.path("server.key"),
    );
    let files = [
        ("ca", ca.clone()),
        ("other_ca", other.path("ca.pem")),
        ("cert", pki.path("client.pem")),
        ("key", pki.path("client.key")),
        ("free", free.to_string()),
    ];
    let plain: &[(&str, i32)] = &[
        // README, EXAMPLES.
        ("-addr=localhost:{port}", 0),
        (
            "-addr=localhost:{free} -connect-timeout 250ms -rpc-timeout 100ms",
            2,
        ),
        // README, the Kubernetes exec probe.
        ("-addr=:{port}", 0),
        // README, Other Available Flags.
        ("-addr=:{port} -service db", 4),
        ("-addr=:{port} -service=nope", 3),
        (
            "-addr localhost:{port} -connect-timeout=2s -rpc-timeout=1.5s -user-agent kube-probe/1.31 -gzip",
            0,
        ),
        (
            "-addr=:{port} -service= -rpc-header=x-probe:1 -gzip=true -v=false",
            0,
        ),
    ];
    let tls: &[(&str, i32)] = &[
        // README, Health Checking TLS Servers: its example.
        (
            "-addr 127.0.0.1:{port} -tls -tls-ca-cert {ca} -tls-server-name=example.com -rpc-header=foo:bar -rpc-header=foo2:bar2",
            0,
        ),
        (
            "-addr=localhost:{port} -tls -tls-ca-cert={ca} -service db",
            4,
        ),
        ("-addr=localhost:{port} -tls -tls-no-verify", 0),
        ("-addr=localhost:{port} -tls -tls-ca-cert {other_ca}", 2),
        (
            "-addr=127.0.0.1:{port} -tls -tls-ca-cert {ca} -tls-server-name=elsewhere.example",
            2,
        ),
    ];
    let mtls: &[(&str, i32)] = &[
        (
            "-addr=localhost:{port} -tls -tls-ca-cert {ca} -tls-client-cert {cert} -tls-client-key {key}",
            0,
        ),
        (
            "-addr=localhost:{port} -tls -tls-no-verify -tls-client-cert={cert} -tls-client-key={key} -service db",
            4,
        ),
    ];
    // Each set of lines against healthweb, then grpcio, each started with `args`.
    let against = |healthweb_args: &[&str], grpcio_args: &[&str], lines: &[(&str, i32)]| {
        let healthweb = Binary::serve(&[healthweb_args, &["--service", "db=NOT_SERVING"]].concat());
        let mut grpcio = Peer::start(grpcio_args);
        grpcio.set("db", "NOT_SERVING");
        for port in [healthweb.addr.port(), grpcio.port] {
            let vars = [&files[..], &[("port", port.to_string())]].concat();
            for (line, code) in lines {
                assert_says(*code, probe_line(line, &vars), line);
            }
        }
    };
    let tls_files = ["--tls-cert", &cert, "--tls-key", &key];
    against(&[], &[], plain);
    against(&tls_files, &[&cert, &key], tls);
    against(
        &[&tls_files[..], &["--tls-client-ca", &ca]].concat(),
        &[&cert, &key, &ca],
        mtls,
    );
}

#[test]
fn grpc_health_probe_flags_verbose_version_and_refusals() {
    let server = Binary::serve(&[]);
    let addr = format!("-addr=:{}", server.addr.port());
    let (code, out, err) = run_cli(&["check", &addr, "-v"]);
    assert_eq!((code, out.as_str()), (0, "status: SERVING\n"), "{err}");
    let err: Vec<&str> = err.lines().collect();
    assert_eq!(
        err[..2],
        [
            "parsed options:",
            &format!(
                "> addr=http://localhost:{} service=\"\" conn_timeout=1s rpc_timeout=1s",
                server.addr.port()
            )
        ]
    );
    assert!(err.contains(&"establishing connection"), "{err:?}");
    assert!(
        err.last().unwrap().starts_with("time elapsed: connect="),
        "{err:?}"
    );

    let (code, out, _) = run_cli(&["check", "-version"]);
    assert_eq!(
        (code, out),
        (0, format!("healthweb {}\n", env!("CARGO_PKG_VERSION")))
    );

    // grpc-health-probe's argument checks, exit 1 with its message (healthweb's
    // spelling of the flag first).
    for (line, says) in [
        ("", "error: --addr not specified"),
        (
            "-addr=:1 -connect-timeout=0s",
            "error: --connect-timeout must be greater than zero (specified: 0s)",
        ),
        (
            "-addr=:1 -rpc-timeout 0s",
            "error: --timeout (-rpc-timeout) must be greater than zero",
        ),
        (
            "-addr=:1 -tls-ca-cert ca.pem",
            "error: specified --tls-ca (-tls-ca-cert) without TLS",
        ),
        (
            "-addr=:1 -tls-no-verify",
            "error: specified --tls-no-verify without TLS",
        ),
        (
            "-addr=:1 -tls-server-name x",
            "error: specified --tls-server-name without TLS",
        ),
        (
            "-addr=:1 -tls -tls-no-verify -tls-ca-cert ca.pem",
            "error: cannot specify --tls-ca (-tls-ca-cert) with --tls-no-verify",
        ),
        ("-addr=:1 -tls -tls-client-cert c.pem", "--tls-key <FILE>"),
        (
            "-addr=:1 -rpc-header nocolon",
            "\"nocolon\" is not NAME:VALUE",
        ),
        (
            "-addr=localhost",
            "error: bad address \"localhost\": give HOST:PORT",
        ),
        (
            "-addr=http://localhost:1 -tls",
            "error: --tls with the address \"http://localhost:1\"",
        ),
        ("-addr=:1 -frobnicate", "unexpected argument '--frobnicate'"),
        // Not supported here, and said so.
        ("-addr=:1 -alts", "error: --alts is not supported"),
        ("-addr=:1 -spiffe", "error: --spiffe is not supported"),
    ] {
        let (code, _, err) = probe_line(line, &[]);
        assert_eq!(code, 1, "{line}: {err}");
        assert!(err.contains(says), "{line}: {err}");
    }
}

#[test]
fn a_binary_named_grpc_health_probe_is_check() {
    let server = Binary::serve(&["--service", "db=NOT_SERVING"]);
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("grpc_health_probe");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_healthweb"), &probe).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(&probe).args(args).output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    };
    let addr = format!("-addr=:{}", server.addr.port());
    assert_eq!(run(&[&addr]), (0, "status: SERVING\n".into()));
    assert_eq!(run(&[&addr, "-service", "db"]).0, 4);
}

#[test]
fn rpc_header_reaches_a_grpcio_server_that_requires_it() {
    let peer = Peer::start(&["--require-header", "authorization: Bearer t0ken"]);
    let addr = format!("-addr=127.0.0.1:{}", peer.port);
    let (code, _, err) = run_cli(&["check", &addr]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.starts_with(
            "error: health rpc failed: UNAUTHENTICATED: missing header authorization: Bearer t0ken"
        ),
        "{err}"
    );
    for header in [
        &["-rpc-header", "authorization: Bearer t0ken"][..],
        &["-rpc-header=Authorization:Bearer t0ken"],
        &[
            "--header",
            "authorization:Bearer t0ken",
            "-rpc-header",
            "x: y",
        ],
    ] {
        let args = [&["check", &addr][..], header].concat();
        assert_eq!(
            run_cli(&args),
            (0, "status: SERVING\n".into(), String::new()),
            "{header:?}"
        );
    }
}

/// tonic-health behind tonic-web, on one port for native gRPC and gRPC-Web, with
/// `db` NOT_SERVING and an interceptor that refuses every request not compressed
/// with gzip: a server no one here wrote, made to take gzip only.
async fn gzip_only_server() -> SocketAddr {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("db", tonic_health::ServingStatus::NotServing)
        .await;
    let only_gzip = |request: tonic::Request<()>| match request.metadata().get("grpc-encoding") {
        Some(encoding) if encoding == "gzip" => Ok(request),
        _ => Err(Status::invalid_argument(
            "this server takes gzip-compressed requests only",
        )),
    };
    let health = health.accept_compressed(CompressionEncoding::Gzip);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .accept_http1(true)
            .layer(tonic_web::GrpcWebLayer::new())
            .add_service(InterceptedService::new(health, only_gzip))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    addr
}

// Multi-threaded: the server runs while this test blocks on the probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_reaches_a_server_that_takes_only_gzip() {
    let url = format!("http://{}", gzip_only_server().await);
    for wire in WIRES {
        let (code, _, err) = check(&url, wire);
        assert_eq!(code, 3, "{wire:?}: {err}");
        assert!(
            err.contains("INVALID_ARGUMENT: this server takes gzip-compressed requests only"),
            "{wire:?}: {err}"
        );
        let gzip = [wire, &["-gzip"]].concat();
        assert_eq!(
            check(&url, &gzip),
            (0, "status: SERVING\n".into(), String::new()),
            "{wire:?}"
        );
        // The compressed message was read: it named the service.
        assert_eq!(check(&url, &[&gzip[..], &["-service", "db"]].concat()).0, 4);
    }
}

#[test]
fn gzip_as_grpcio_sees_it() {
    // gRPC core refusing gzip (its own check, not ours) shows that -gzip really
    // compresses what goes on the wire.
    let refuses = Peer::start(&["--refuse-gzip"]);
    let addr = format!("-addr=:{}", refuses.port);
    assert_eq!(run_cli(&["check", &addr]).0, 0);
    let (code, _, err) = run_cli(&["check", &addr, "-gzip"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("UNIMPLEMENTED: Compression algorithm 'gzip' is disabled")
            && err.contains("sent with --gzip"),
        "{err}"
    );
    // A server that compresses every answer, asked or not: taken either way.
    let compresses = Peer::start(&["--answer-gzip"]);
    let addr = format!("-addr=:{}", compresses.port);
    for gzip in [&[][..], &["-gzip"]] {
        let args = [&["check", &addr][..], gzip].concat();
        assert_eq!(
            run_cli(&args),
            (0, "status: SERVING\n".into(), String::new())
        );
    }
}

/// Waits at most [`LIMIT`] for `child` to exit; its exit code.
fn exit_within(child: &mut std::process::Child) -> i32 {
    let start = std::time::Instant::now();
    while start.elapsed() < LIMIT {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("still running after {LIMIT:?}");
}

#[test]
fn until_not_serving_exits_when_the_service_goes_down_or_away() {
    let mut server = Binary::serve(&["--service", "db=SERVING", "--admin-listen", "127.0.0.1:0"]);
    let admin = server.admin.unwrap().to_string();
    let watch = |args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_healthweb"))
            .args(["check", "--addr", &server.url()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = lines(child.stdout.take().unwrap());
        let err = lines(child.stderr.take().unwrap());
        let first = out.recv_timeout(LIMIT).unwrap();
        assert!(first.ends_with("Z SERVING"), "{first}");
        (child, out, err)
    };

    let (mut child, out, err) = watch(&["--service", "db", "--watch", "--until-not-serving"]);
    assert_eq!(
        run_cli(&["set", "--admin", &admin, "db", "NOT_SERVING"]).0,
        0
    );
    assert_eq!(exit_within(&mut child), 4);
    assert!(out.recv_timeout(LIMIT).unwrap().ends_with("Z NOT_SERVING"));
    assert_eq!(
        err.recv_timeout(LIMIT).unwrap(),
        "service unhealthy (responded with \"NOT_SERVING\")"
    );

    // Killed, the server says nothing more: the stream breaks, reconnecting fails.
    let (mut child, _out, err) = watch(&["--until-not-serving"]);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert_eq!(exit_within(&mut child), 2);
    let said = err.recv_timeout(LIMIT).unwrap();
    assert!(
        said.starts_with(&format!(
            "error: failed to connect service at \"{}\": the Watch broke and reconnecting failed",
            server.url()
        )),
        "{said}"
    );
}

/// The README's exec probes (`command: ["healthweb", "check", ...]`), as written but
/// for the port.
#[test]
fn readme_exec_probes_run_as_written() {
    let server = Binary::serve(&["--service", "payments=SERVING"]);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let commands: Vec<Vec<String>> = readme
        .lines()
        .filter_map(|line| line.trim().strip_prefix("command: "))
        .map(|array| {
            let array = array.split(" #").next().unwrap();
            serde_json::from_str(array).unwrap()
        })
        .collect();
    assert!(!commands.is_empty(), "the README has exec probes");
    for command in commands {
        assert_eq!(command[..2], ["healthweb", "check"], "{command:?}");
        let args: Vec<String> = command[1..]
            .iter()
            .map(|a| a.replace(":8080", &format!(":{}", server.addr.port())))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(
            run_cli(&args),
            (0, "status: SERVING\n".into(), String::new()),
            "{command:?}"
        );
    }
}
