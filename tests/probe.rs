//! `healthweb check` against the real healthweb and against a grpcio health
//! server: every exit code, native gRPC and gRPC-Web, TLS and mTLS, and --watch.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use nix::sys::signal::Signal;

use crate::{
    interop::Peer,
    tls::Pki,
    util::{Binary, LIMIT, run_cli},
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
        let (code, out, _) = check(&url, &with(wire, &["--service", "db"]));
        assert_eq!(
            (code, out.as_str()),
            (4, "status: NOT_SERVING\n"),
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
            err.contains("cannot connect") && err.contains("refused"),
            "{err}"
        );
    }
    let (code, _, err) = check("127.0.0.1:8080", &[]);
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
        assert!(err.contains("DEADLINE_EXCEEDED"), "{err}");
    }
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
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("server.pem"),
        pki.path("server.key"),
    );
    let (client_cert, client_key) = (pki.path("client.pem"), pki.path("client.key"));
    let healthweb = Binary::serve(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &ca,
    ]);
    let peer = Peer::start(&[&cert, &key, &ca]);
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
