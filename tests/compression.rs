//! gzip-compressed calls (`grpc-encoding: gzip`) on every wire: native gRPC from
//! tonic's client, gRPC-Web binary and text over HTTP/1.1 and HTTP/2 as raw frames;
//! and what a bad compressed call gets: an encoding the server does not have, and a
//! message that inflates past the size limit. (`probe` drives the same through
//! `healthweb check -gzip`.)

use std::io::Write;

use bytes::Bytes;
use flate2::{Compression, write::GzEncoder};
use healthweb_proto::{pb::health_check_response::ServingStatus, wire};
use prost::Message;
use tonic::codec::CompressionEncoding;

use crate::util::{Http, TestServer, decode_web, raw, req, status_of, within};

/// A gRPC(-Web) frame holding `message` compressed with gzip: flag 1, then the length.
fn gzip_frame(message: &impl Message) -> Bytes {
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(&message.encode_to_vec()).unwrap();
    wire::frame(wire::COMPRESSED, &gzip.finish().unwrap()).into()
}

const CHECK: &str = wire::path::CHECK;

#[tokio::test]
async fn gzip_calls_on_every_wire() {
    let server = TestServer::serving([("db", ServingStatus::NotServing)]).await;

    let mut client = server
        .client()
        .await
        .send_compressed(CompressionEncoding::Gzip);
    let reply = within(client.check(req("db"))).await.unwrap().into_inner();
    assert_eq!(status_of(reply.status), ServingStatus::NotServing);
    let mut watch = within(client.watch(req("db"))).await.unwrap().into_inner();
    let first = within(watch.message()).await.unwrap().unwrap();
    assert_eq!(status_of(first.status), ServingStatus::NotServing);

    let url = format!("{}{CHECK}", server.url());
    let binary = gzip_frame(&req("db"));
    let text = Bytes::from(wire::text_encode(&binary));
    for wire in [Http::H1, Http::H2] {
        for (content_type, body) in [
            ("application/grpc-web+proto", binary.clone()),
            ("application/grpc-web-text", text.clone()),
        ] {
            let headers = [("content-type", content_type), ("grpc-encoding", "gzip")];
            let reply = decode_web(&raw(wire, &url, http::Method::POST, &headers, body).await);
            assert_eq!(
                reply.grpc_status(),
                Some("0"),
                "{wire:?} {content_type}: {reply:?}"
            );
            assert_eq!(
                reply.statuses(),
                [ServingStatus::NotServing],
                "{wire:?} {content_type}"
            );
        }
    }
}

#[tokio::test]
async fn bad_compressed_calls_get_a_status_that_says_why() {
    let server = TestServer::start().await;
    let url = format!("{}{CHECK}", server.url());
    let call = |encoding: &'static str, body: Bytes| {
        let url = url.clone();
        async move {
            let headers = [
                ("content-type", "application/grpc-web+proto"),
                ("grpc-encoding", encoding),
            ];
            raw(Http::H1, &url, http::Method::POST, &headers, body).await
        }
    };

    // An encoding this server does not have: UNIMPLEMENTED, naming it, and the
    // encodings it takes in grpc-accept-encoding.
    let answer = call("br", gzip_frame(&req(""))).await;
    let reply = decode_web(&answer);
    assert_eq!(reply.grpc_status(), Some("12"), "{reply:?}");
    assert!(
        reply.trailer("grpc-message").unwrap().contains("br"),
        "{reply:?}"
    );
    assert_eq!(answer.headers["grpc-accept-encoding"], "gzip,identity");

    // 1 MiB that gzip makes 1 KiB: refused as it inflates past --max-request-size,
    // before it is all in memory.
    let bomb = gzip_frame(&req(&"x".repeat(1 << 20)));
    assert!(bomb.len() < 4096, "{}", bomb.len());
    let reply = decode_web(&call("gzip", bomb).await);
    assert_eq!(reply.grpc_status(), Some("8"), "{reply:?}");
    assert!(
        reply.trailer("grpc-message").unwrap().contains("16384"),
        "{reply:?}"
    );

    // And the server answers the next call as ever.
    let reply = decode_web(&call("gzip", gzip_frame(&req(""))).await);
    assert_eq!(reply.grpc_status(), Some("0"), "{reply:?}");
}
