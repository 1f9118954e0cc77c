//! Hostile and broken connections against the real `healthweb serve`, made with
//! raw sockets, hand-written HTTP/2 frames and the `h2` crate: silent and
//! half-preface sockets at the connection cap, idle connections, a peer that
//! vanished under a Watch, stalled request bodies, oversize bodies over HTTP/1.1,
//! cross-site and rebound admin requests, and the lame-duck drain. After each,
//! a real client (Python grpcio) still gets SERVING and memory stays bounded.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use healthweb_proto::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use http::{HeaderMap, Method};
use nix::sys::signal::Signal;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    interop::python,
    util::{Binary, Http, LIMIT, client, frame, raw, req, run_cli, status_of, within},
};

/// What grpcio's Check says, with `deadline` to say it: the status, or the error.
fn probe(server: &Binary, deadline: Duration) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/interop/grpcio_check.py"
    );
    let out = Command::new(python())
        .args([
            script,
            &server.addr.to_string(),
            &deadline.as_secs_f64().to_string(),
        ])
        .env("GRPC_VERBOSITY", "ERROR")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// After an attack: grpcio still gets SERVING, and memory grew by less than 32 MiB.
fn still_healthy(server: &Binary, rss_before: u64) {
    assert_eq!(probe(server, LIMIT), "SERVING");
    let rss = server.rss_kib();
    assert!(
        rss < rss_before + 32 * 1024,
        "RSS grew from {rss_before} KiB to {rss} KiB"
    );
}

/// Reads until the peer closes (EOF or reset); returns what arrived.
async fn until_closed(socket: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match within(socket.read(&mut buf)).await {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

// ------------------------------------------------------------------ raw HTTP/2

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend([kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// A header block in HPACK's plainest form: every field a literal, never indexed.
fn hpack(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        out.push(name.len() as u8);
        out.extend(name.as_bytes());
        out.push(value.len() as u8);
        out.extend(value.as_bytes());
    }
    out
}

/// The frames of one native gRPC call on stream 1, message and all.
fn h2_call(path: &str, message: &[u8]) -> Vec<u8> {
    let headers = hpack(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "attack.test"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]);
    let mut out = h2_frame(HEADERS, END_HEADERS, 1, &headers);
    out.extend(h2_frame(DATA, END_STREAM, 1, message));
    out
}

/// Reads one frame: (type, flags, payload).
async fn read_h2_frame(socket: &mut TcpStream) -> std::io::Result<(u8, u8, Vec<u8>)> {
    let mut head = [0u8; 9];
    socket.read_exact(&mut head).await?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    socket.read_exact(&mut payload).await?;
    Ok((head[3], head[4], payload))
}

/// A live HTTP/2 client: it acknowledges SETTINGS and PINGs, and reads until the
/// close; the kinds of the frames it read.
async fn live_until_closed(h2: &mut TcpStream) -> Vec<u8> {
    let mut kinds = Vec::new();
    while let Ok((kind, flags, payload)) = within(read_h2_frame(h2)).await {
        kinds.push(kind);
        // A PING's ACK echoes it; a SETTINGS ACK is empty.
        if kind == PING && flags & ACK == 0 {
            let _ = h2.write_all(&h2_frame(PING, ACK, 0, &payload)).await;
        }
        if kind == SETTINGS && flags & ACK == 0 {
            let _ = h2.write_all(&h2_frame(SETTINGS, ACK, 0, &[])).await;
        }
    }
    kinds
}

// ------------------------------------------------------------------ the attacks

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_preface_sockets_at_the_cap_do_not_lock_out_a_probe() {
    let server = Binary::serve(&["--max-connections", "16", "--header-read-timeout", "3s"]);
    let rss = server.rss_kib();
    // 40 sockets for 16 slots: half say nothing, half send only part of the preface.
    let mut sockets = Vec::new();
    for i in 0..40 {
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        if i % 2 == 1 {
            socket.write_all(&PREFACE[..16]).await.unwrap();
        }
        sockets.push(socket);
    }
    // A probe with a deadline as short as the header-read timeout still gets in:
    // the oldest sockets with nothing in flight give way.
    assert_eq!(probe(&server, Duration::from_secs(3)), "SERVING");
    // And every one of them is closed, at the cap or by the header-read timeout.
    for socket in &mut sockets {
        let said = until_closed(socket).await;
        assert!(said.is_empty(), "{said:?}");
    }
    still_healthy(&server, rss);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_but_an_open_watch_is_never_idle() {
    let server = Binary::serve(&["--idle-timeout", "1s", "--admin-listen", "127.0.0.1:0"]);
    let rss = server.rss_kib();
    // HTTP/2: the preface and SETTINGS, one call, then nothing: GOAWAY, then the close.
    let mut h2 = TcpStream::connect(server.addr).await.unwrap();
    let mut hello = PREFACE.to_vec();
    hello.extend(h2_frame(SETTINGS, 0, 0, &[]));
    hello.extend(h2_call("/grpc.health.v1.Health/Check", &frame(&req(""))));
    h2.write_all(&hello).await.unwrap();
    let kinds = live_until_closed(&mut h2).await;
    assert!(kinds.contains(&HEADERS), "the call was answered: {kinds:?}");
    assert!(kinds.contains(&GOAWAY), "{kinds:?}");

    // HTTP/1.1: one request on a keep-alive connection, then nothing: closed.
    let mut h1 = TcpStream::connect(server.addr).await.unwrap();
    h1.write_all(b"GET /healthz HTTP/1.1\r\nhost: attack.test\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut h1).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");

    // A Watch open for three idle timeouts still hears the next change.
    let mut client = client(&server.url()).await;
    let mut stream = client.watch(req("")).await.unwrap().into_inner();
    let first = within(stream.message()).await.unwrap().unwrap();
    assert_eq!(status_of(first.status), ServingStatus::Serving);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let admin = server.admin.unwrap().to_string();
    assert_eq!(run_cli(&["set", "--admin", &admin, "", "NOT_SERVING"]).0, 0);
    let next = within(stream.message()).await.unwrap().unwrap();
    assert_eq!(status_of(next.status), ServingStatus::NotServing);
    assert_eq!(run_cli(&["set", "--admin", &admin, "", "SERVING"]).0, 0);
    still_healthy(&server, rss);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_asks_is_idle_from_its_set_up() {
    // The header-read timeout is longer than every wait here: only the idle timeout,
    // counted from the set-up as grpc-go's MaxConnectionIdle, can close it in time.
    let server = Binary::serve(&["--idle-timeout", "1s", "--header-read-timeout", "120s"]);
    let mut h2 = TcpStream::connect(server.addr).await.unwrap();
    let mut hello = PREFACE.to_vec();
    hello.extend(h2_frame(SETTINGS, 0, 0, &[]));
    h2.write_all(&hello).await.unwrap();
    // `within` fails the test long before the header-read timeout could close it.
    let kinds = live_until_closed(&mut h2).await;
    assert!(kinds.contains(&GOAWAY), "closed with GOAWAY: {kinds:?}");
    assert!(!kinds.contains(&HEADERS), "{kinds:?}");
}

/// How many Watch streams follow `name`, from the admin API.
async fn watchers(server: &Binary, name: &str) -> u64 {
    let url = format!("http://{}/services", server.admin.unwrap());
    let list = raw(Http::H1, &url, Method::GET, &[], "").await;
    let json: serde_json::Value = serde_json::from_slice(&list.body).unwrap();
    json["watchers"][name].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_find_a_peer_that_vanished_under_a_watch() {
    let server = Binary::serve(&[
        "--keepalive-interval",
        "1s",
        "--keepalive-timeout",
        "1s",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let rss = server.rss_kib();
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    let mut hello = PREFACE.to_vec();
    hello.extend(h2_frame(SETTINGS, 0, 0, &[]));
    socket.write_all(&hello).await.unwrap();
    // A well-behaved start: acknowledge the server's SETTINGS, then open a Watch.
    loop {
        let (kind, flags, _) = within(read_h2_frame(&mut socket)).await.unwrap();
        if kind == SETTINGS && flags & ACK == 0 {
            break;
        }
    }
    let mut call = h2_frame(SETTINGS, ACK, 0, &[]);
    call.extend(h2_call("/grpc.health.v1.Health/Watch", &frame(&req(""))));
    socket.write_all(&call).await.unwrap();
    within(async {
        while watchers(&server, "").await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // Then the peer goes silent without closing: it answers no PING. The server
    // notices and closes, and the stream is gone.
    within(async {
        while watchers(&server, "").await != 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    drop(socket);
    still_healthy(&server, rss);
}

/// An HTTP/1.1 gRPC-Web call whose body stops after its first bytes; returns the
/// grpc-status of the answer.
async fn stalled_web_call(
    server: &Binary,
    content_type: &str,
    extra: &str,
    first: &[u8],
) -> String {
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nhost: attack.test\r\n\
         content-type: {content_type}\r\ncontent-length: 64\r\n{extra}\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(first).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = within(socket.read(&mut buf)).await.unwrap();
        assert!(n > 0, "closed without an answer: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    text.lines()
        .find_map(|l| l.strip_prefix("grpc-status: "))
        .unwrap_or_else(|| panic!("no grpc-status in {text}"))
        .trim()
        .to_owned()
}

/// A native gRPC call whose body never comes; returns the grpc-status.
async fn stalled_h2_call(server: &Binary, timeout: Option<&str>) -> String {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::post("http://attack.test/grpc.health.v1.Health/Check")
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(timeout) = timeout {
        request = request.header("grpc-timeout", timeout);
    }
    let (answer, _body) = send.send_request(request.body(()).unwrap(), false).unwrap();
    let answer = within(answer).await.unwrap();
    let status = |headers: &HeaderMap| {
        headers
            .get("grpc-status")
            .map(|s| s.to_str().unwrap().to_owned())
    };
    if let Some(code) = status(answer.headers()) {
        return code;
    }
    let mut body = answer.into_body();
    while let Some(data) = within(body.data()).await {
        data.unwrap();
    }
    status(&within(body.trailers()).await.unwrap().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_end_with_deadline_exceeded_in_every_protocol() {
    let server = Binary::serve(&["--request-body-timeout", "1s"]);
    let rss = server.rss_kib();
    let started = Instant::now();
    // With grpc-timeout, the deadline runs from the headers, body or no body.
    assert_eq!(stalled_h2_call(&server, Some("1S")).await, "4");
    let binary = "application/grpc-web+proto";
    let text = "application/grpc-web-text";
    let deadline = "grpc-timeout: 1S\r\n";
    assert_eq!(
        stalled_web_call(&server, binary, deadline, b"\0\0").await,
        "4"
    );
    assert_eq!(
        stalled_web_call(&server, text, deadline, b"AAAA").await,
        "4"
    );
    // Without one, --request-body-timeout ends the wait.
    assert_eq!(stalled_h2_call(&server, None).await, "4");
    assert_eq!(stalled_web_call(&server, binary, "", b"\0\0").await, "4");
    assert_eq!(stalled_web_call(&server, text, "", b"AAAA").await, "4");
    assert!(started.elapsed() < LIMIT, "{:?}", started.elapsed());
    still_healthy(&server, rss);
}

/// Reads one HTTP/1.1 response head from `socket`.
async fn response_head(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match within(socket.read(&mut byte)).await {
            Ok(1) => head.push(byte[0]),
            Ok(_) => panic!("closed after {:?}", String::from_utf8_lossy(&head)),
            Err(error) => panic!("{error} after {:?}", String::from_utf8_lossy(&head)),
        }
    }
    String::from_utf8_lossy(&head).to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_over_http1_are_refused_in_words_and_the_connection_lives() {
    let server = Binary::serve(&["--max-request-size", "1024", "--linger-timeout", "20s"]);
    let rss = server.rss_kib();
    let message = HealthCheckRequest {
        service: "x".repeat(512 * 1024),
    };
    let body = frame(&message);
    for round in 0..3 {
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        let head = format!(
            "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nhost: attack.test\r\n\
             content-type: application/grpc-web+proto\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&body[..16 * 1024]).await.unwrap();
        // The refusal comes as soon as the frame's length is read...
        let answer = response_head(&mut socket).await;
        assert!(answer.contains("grpc-status: 8"), "round {round}: {answer}");
        // ...while a slow client is still sending: the server goes on reading
        // (and throwing away) instead of resetting the connection under it,
        let rest = within(socket.write_all(&body[16 * 1024..])).await;
        assert!(rest.is_ok(), "round {round}: {rest:?}");
        // so the connection is whole, and even takes the next request.
        socket
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: attack.test\r\n\r\n")
            .await
            .unwrap();
        let next = response_head(&mut socket).await;
        assert!(next.starts_with("http/1.1 200"), "round {round}: {next}");
    }
    still_healthy(&server, rss);
}

/// One raw HTTP/1.1 request to the admin API; returns the status code.
async fn admin_call(
    server: &Binary,
    host: &str,
    method: &str,
    path: &str,
    headers: &[&str],
) -> u16 {
    let mut socket = TcpStream::connect(server.admin.unwrap()).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: 0\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("connection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let answer = until_closed(&mut socket).await;
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_refuses_other_sites_other_hosts_and_forms() {
    let server = Binary::serve(&["--admin-listen", "127.0.0.1:0"]);
    let rss = server.rss_kib();
    let own = server.admin.unwrap().to_string();
    let json = "content-type: application/json";
    // A page on another site, posting a "simple" form that needs no preflight.
    let form = "content-type: text/plain";
    let evil = "origin: https://evil.example";
    assert_eq!(
        admin_call(&server, &own, "POST", "/shutdown", &[form, evil]).await,
        403
    );
    assert_eq!(
        admin_call(
            &server,
            &own,
            "POST",
            "/shutdown",
            &[json, "sec-fetch-site: cross-site"]
        )
        .await,
        403
    );
    // The same request without Origin (an old browser): no form can send JSON.
    assert_eq!(
        admin_call(&server, &own, "POST", "/shutdown", &[form]).await,
        415
    );
    // DNS rebinding: the page's own name, resolved to 127.0.0.1.
    let port = server.admin.unwrap().port();
    let rebound = format!("evil.example:{port}");
    assert_eq!(
        admin_call(&server, &rebound, "POST", "/shutdown", &[json]).await,
        403
    );
    assert_eq!(
        admin_call(&server, &rebound, "GET", "/services", &[]).await,
        403
    );
    // Nothing of that changed anything.
    still_healthy(&server, rss);
    // The real client, and a loopback name for the address, get through.
    assert_eq!(run_cli(&["set", "--admin", &own, "x", "SERVING"]).0, 0);
    let localhost = format!("localhost:{port}");
    assert_eq!(
        admin_call(&server, &localhost, "GET", "/services", &[]).await,
        200
    );

    // With a token file, nobody without the token.
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let token = token.to_str().unwrap();
    let guarded = Binary::serve(&["--admin-listen", "127.0.0.1:0", "--admin-token-file", token]);
    let own = guarded.admin.unwrap().to_string();
    assert_eq!(
        admin_call(&guarded, &own, "GET", "/services", &[]).await,
        401
    );
    let wrong = "authorization: Bearer s3cret-tokeN";
    assert_eq!(
        admin_call(&guarded, &own, "POST", "/shutdown", &[json, wrong]).await,
        401
    );
    let right = "authorization: Bearer s3cret-token";
    assert_eq!(
        admin_call(&guarded, &own, "GET", "/services", &[right]).await,
        200
    );
    let (code, _, err) = run_cli(&["set", "--admin", &own, "x", "SERVING"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("token"), "{err}");
    let set = [
        "set",
        "--admin",
        &own,
        "--admin-token-file",
        token,
        "x",
        "NOT_SERVING",
    ];
    assert_eq!(run_cli(&set).0, 0);
    let mut client = client(&guarded.url()).await;
    let x = client.check(req("x")).await.unwrap().into_inner();
    assert_eq!(status_of(x.status), ServingStatus::NotServing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_drain_delay_answers_not_serving_before_it_drains() {
    let mut server = Binary::serve(&["--drain-delay", "5s", "--shutdown-grace", "1s"]);
    let mut client = client(&server.url()).await;
    let mut watch = client.watch(req("")).await.unwrap().into_inner();
    let first = within(watch.message()).await.unwrap().unwrap();
    assert_eq!(status_of(first.status), ServingStatus::Serving);
    server.signal(Signal::SIGTERM);
    server.wait_for_log("shutting down");
    // The lame duck: watchers hear NOT_SERVING, and new connections are still
    // answered, with NOT_SERVING, so probes take the instance out of rotation.
    let next = within(watch.message()).await.unwrap().unwrap();
    assert_eq!(status_of(next.status), ServingStatus::NotServing);
    assert_eq!(probe(&server, LIMIT), "NOT_SERVING");
    let healthz = raw(
        Http::H1,
        &format!("{}/healthz", server.url()),
        Method::GET,
        &[],
        "",
    )
    .await;
    assert_eq!(healthz.status, 503);
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "still up during the delay"
    );
    // Then it drains: the Watch ends with UNAVAILABLE and the process exits 0.
    let end = within(watch.message()).await.unwrap_err();
    assert_eq!(end.code(), tonic::Code::Unavailable);
    let status = server
        .wait(LIMIT)
        .expect("exited after the delay and the grace");
    assert_eq!(status.code(), Some(0));
}
