//! Bad input gets a clear gRPC status or HTTP 4xx, and the server keeps serving.

use std::time::Duration;

use healthweb_proto::pb::health_check_response::ServingStatus;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{Http, Raw, TestServer, decode_web, frame, raw, req, within};

const BINARY: &str = "application/grpc-web+proto";
const TEXT: &str = "application/grpc-web-text";

async fn post(
    server: &TestServer,
    http: Http,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Raw {
    let url = format!("{}{path}", server.url());
    raw(
        http,
        &url,
        Method::POST,
        &[("content-type", content_type), ("accept", content_type)],
        body,
    )
    .await
}

/// Asserts a gRPC-Web error: status code and a message containing `needle`.
fn grpc_error(raw: &Raw, code: &str, needle: &str) {
    assert_eq!(raw.status, 200);
    let reply = decode_web(raw);
    assert_eq!(reply.grpc_status(), Some(code), "{:?}", reply.trailers);
    let message = reply
        .trailer("grpc-message")
        .unwrap_or_default()
        .replace("%20", " ");
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
}

async fn still_serving(server: &TestServer) {
    let mut client = server.client().await;
    let status = client.check(req("")).await.unwrap().into_inner().status;
    assert_eq!(status, ServingStatus::Serving as i32);
}

const CHECK: &str = "/grpc.health.v1.Health/Check";

#[tokio::test]
async fn malformed_frames() {
    let server = TestServer::start().await;
    for http in [Http::H1, Http::H2] {
        // A frame header cut short.
        let r = post(&server, http, CHECK, BINARY, vec![0, 0, 0]).await;
        grpc_error(&r, "13", "Unexpected EOF");
        // A length prefix larger than the body.
        let r = post(&server, http, CHECK, BINARY, vec![0, 0, 0, 0, 16, 0x0a, 1]).await;
        grpc_error(&r, "13", "Unexpected EOF");
        // A message over the size limit.
        let mut big = frame(&req(&"a".repeat(20_000))).to_vec();
        big.truncate(big.len());
        let r = post(&server, http, CHECK, BINARY, big).await;
        grpc_error(&r, "8", "the limit is: 16384 bytes");
        // Compressed without saying how.
        let r = post(&server, http, CHECK, BINARY, vec![1, 0, 0, 0, 0]).await;
        grpc_error(&r, "13", "compressed-flag");
        // Not protobuf at all.
        let r = post(
            &server,
            http,
            CHECK,
            BINARY,
            vec![0, 0, 0, 0, 2, 0xff, 0xff],
        )
        .await;
        grpc_error(&r, "13", "failed to decode Protobuf message");
    }
    still_serving(&server).await;
}

#[tokio::test]
async fn invalid_utf8_service_name() {
    let server = TestServer::start().await;
    let r = post(
        &server,
        Http::H1,
        CHECK,
        BINARY,
        vec![0, 0, 0, 0, 3, 0x0a, 1, 0xff],
    )
    .await;
    grpc_error(
        &r,
        "13",
        "HealthCheckRequest.service: invalid string value: data is not UTF-8 encoded",
    );
    still_serving(&server).await;
}

#[tokio::test]
async fn bad_base64() {
    let server = TestServer::start().await;
    let r = post(&server, Http::H1, CHECK, TEXT, b"A$$$AAA=".to_vec()).await;
    grpc_error(&r, "13", "Invalid symbol 36");
    still_serving(&server).await;
}

#[tokio::test]
async fn wrong_content_type_method_and_protocol() {
    let server = TestServer::start().await;
    for http in [Http::H1, Http::H2] {
        for ct in [
            "text/plain",
            "application/json",
            "application/grpc-web+json",
        ] {
            let r = post(&server, http, CHECK, ct, b"{}".to_vec()).await;
            assert_eq!(r.status, 415, "{ct}");
            let body = String::from_utf8_lossy(&r.body);
            assert!(
                body.contains(&format!("unsupported content-type {ct}")),
                "{body}"
            );
            assert!(body.contains("application/grpc-web-text"), "{body}");
        }
        let url = format!("{}{CHECK}", server.url());
        let r = raw(http, &url, Method::GET, &[("content-type", BINARY)], "").await;
        assert_eq!(r.status, 405);
        assert_eq!(r.headers["allow"], "POST");
    }
    let r = post(
        &server,
        Http::H1,
        CHECK,
        "application/grpc",
        frame(&req("")).to_vec(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("needs HTTP/2"));
    still_serving(&server).await;
}

#[tokio::test]
async fn unknown_methods_and_services_are_unimplemented_by_name() {
    let server = TestServer::start().await;
    for path in ["/grpc.health.v1.Health/Nope", "/acme.Billing/Charge"] {
        let r = post(&server, Http::H1, path, BINARY, frame(&req("")).to_vec()).await;
        grpc_error(&r, "12", &format!("unknown method {path}"));
    }
    let mut client = server.client().await;
    still_serving(&server).await;
    drop(client.check(req("")).await.unwrap());
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let server =
        TestServer::with(|s| s.connections.header_read_timeout = Duration::from_millis(300)).await;
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The server closes the connection; the read ends instead of hanging.
    within(socket.read_to_end(&mut buf)).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(buf.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    still_serving(&server).await;
}

#[tokio::test]
async fn concurrent_streams_per_connection_are_capped() {
    let server = TestServer::with(|s| s.connections.max_concurrent_streams = 2).await;
    let mut client = server.client().await;
    let first = client.watch(req("")).await.unwrap();
    let second = client.watch(req("")).await.unwrap();
    assert_eq!(server.registry.watcher_count(""), 2);
    // The third stream waits for a free slot instead of opening.
    let mut third_client = client.clone();
    let third = tokio::spawn(async move { third_client.watch(req("")).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.registry.watcher_count(""), 2);
    assert!(!third.is_finished());
    drop(first);
    within(third).await.unwrap().unwrap();
    drop(second);
}
