//! gRPC-Web, binary and text, over HTTP/1.1 and HTTP/2: Check, Watch and List,
//! decoded from the raw bytes a browser or curl would receive.

use base64::Engine;
use bytes::Bytes;
use healthweb_proto::pb::{
    HealthListRequest, HealthListResponse, health_check_response::ServingStatus,
};
use http::Method;
use prost::Message;

use crate::util::{
    Http, Raw, TestServer, WebReply, WebStream, decode_web, frame, raw, req, status_in, status_of,
};

#[derive(Clone, Copy, Debug)]
pub enum Encoding {
    Binary,
    Text,
}

pub const MODES: [(Http, Encoding); 4] = [
    (Http::H1, Encoding::Binary),
    (Http::H1, Encoding::Text),
    (Http::H2, Encoding::Binary),
    (Http::H2, Encoding::Text),
];

async fn call(
    server: &TestServer,
    mode: (Http, Encoding),
    method: &str,
    body: Bytes,
    extra: &[(&str, &str)],
) -> (Raw, WebReply) {
    let path = format!("/grpc.health.v1.Health/{method}");
    call_path(server, mode, &path, body, extra).await
}

/// A gRPC-Web call of the method at `path` in `mode`, as a browser or curl makes it.
pub async fn call_path(
    server: &TestServer,
    (http, encoding): (Http, Encoding),
    path: &str,
    body: Bytes,
    extra: &[(&str, &str)],
) -> (Raw, WebReply) {
    let (headers, body) = web_request(encoding, body, extra);
    let content_type = headers[0].1;
    let url = format!("{}{path}", server.url());
    let raw = raw(http, &url, Method::POST, &headers, body).await;
    assert_eq!(raw.status, 200);
    let got_type = raw.headers["content-type"].to_str().unwrap();
    assert!(
        got_type.starts_with(content_type),
        "{got_type} for {content_type}"
    );
    let reply = decode_web(&raw);
    (raw, reply)
}

/// What a browser or curl sends for a gRPC-Web call in `encoding`: the headers
/// (content type first) and the body, base64-encoded for gRPC-Web text.
fn web_request<'a>(
    encoding: Encoding,
    body: Bytes,
    extra: &[(&'a str, &'a str)],
) -> (Vec<(&'a str, &'a str)>, Bytes) {
    let (content_type, body) = match encoding {
        Encoding::Binary => ("application/grpc-web+proto", body),
        Encoding::Text => (
            "application/grpc-web-text",
            base64::engine::general_purpose::STANDARD
                .encode(&body)
                .into(),
        ),
    };
    let mut headers = vec![
        ("content-type", content_type),
        ("accept", content_type),
        ("x-grpc-web", "1"),
    ];
    headers.extend_from_slice(extra);
    (headers, body)
}

#[tokio::test]
async fn check_in_every_mode() {
    let server = TestServer::serving([("db", ServingStatus::NotServing)]).await;
    for mode in MODES {
        let (_, reply) = call(&server, mode, "Check", frame(&req("")), &[]).await;
        assert_eq!(reply.grpc_status(), Some("0"), "{mode:?}");
        assert_eq!(reply.statuses(), [ServingStatus::Serving], "{mode:?}");
        let (_, reply) = call(&server, mode, "Check", frame(&req("db")), &[]).await;
        assert_eq!(reply.statuses(), [ServingStatus::NotServing], "{mode:?}");
        let (_, reply) = call(&server, mode, "Check", frame(&req("nope")), &[]).await;
        assert_eq!(reply.grpc_status(), Some("5"), "{mode:?}");
        assert!(reply.messages.is_empty());
        assert_eq!(
            reply.trailer("grpc-message"),
            Some("unknown%20service%20%22nope%22")
        );
    }
}

#[tokio::test]
async fn watch_streams_changes_until_the_deadline_in_every_mode() {
    let server = TestServer::start().await;
    for (i, mode) in MODES.into_iter().enumerate() {
        let name = format!("w{i}");
        server.registry.set(&name, ServingStatus::Serving).unwrap();
        let (headers, body) = web_request(mode.1, frame(&req(&name)), &[("grpc-timeout", "2S")]);
        let url = format!("{}/grpc.health.v1.Health/Watch", server.url());
        let mut watch = WebStream::open(mode.0, &url, &headers, body).await;
        let first = watch.message().await.expect("the current status");
        assert_eq!(status_in(&first), ServingStatus::Serving, "{mode:?}");
        // The change comes once the first message is in, whatever the machine's speed.
        server
            .registry
            .set(&name, ServingStatus::NotServing)
            .unwrap();
        let reply = watch.finish().await;
        assert_eq!(reply.statuses(), [ServingStatus::NotServing], "{mode:?}");
        assert_eq!(
            reply.grpc_status(),
            Some("4"),
            "{mode:?}: DEADLINE_EXCEEDED"
        );
    }
}

#[tokio::test]
async fn watch_of_an_unknown_service_in_every_mode() {
    let server = TestServer::start().await;
    for mode in MODES {
        let (_, reply) = call(
            &server,
            mode,
            "Watch",
            frame(&req("x")),
            &[("grpc-timeout", "100m")],
        )
        .await;
        assert_eq!(
            reply.statuses(),
            [ServingStatus::ServiceUnknown],
            "{mode:?}"
        );
        assert_eq!(reply.grpc_status(), Some("4"));
    }
}

#[tokio::test]
async fn list_in_every_mode() {
    let server = TestServer::serving([("db", ServingStatus::NotServing)]).await;
    for mode in MODES {
        let (_, reply) = call(&server, mode, "List", frame(&HealthListRequest {}), &[]).await;
        assert_eq!(reply.grpc_status(), Some("0"));
        let list = HealthListResponse::decode(reply.messages[0].clone()).unwrap();
        assert_eq!(list.statuses.len(), 2, "{mode:?}");
        assert_eq!(
            status_of(list.statuses["db"].status),
            ServingStatus::NotServing
        );
    }
}
