//! SIGTERM against the real binary: every service NOT_SERVING at once (watchers
//! receive it), Watch streams end, and the process exits 0 within the grace even
//! while clients hold connections open.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use healthweb_proto::pb::health_check_response::ServingStatus;
use nix::sys::signal::Signal;
use tokio::io::AsyncWriteExt;

use crate::util::{Binary, Http, WebStream, client, frame, req, status_in, status_of, within};

#[tokio::test]
async fn sigterm_tells_watchers_then_drains_within_the_grace() {
    let mut server = Binary::serve(&["--service", "payments=SERVING", "--shutdown-grace", "2s"]);
    let mut client = client(&server.url()).await;
    let mut whole = client.watch(req("")).await.unwrap().into_inner();
    let mut payments = client.watch(req("payments")).await.unwrap().into_inner();
    for stream in [&mut whole, &mut payments] {
        let first = within(stream.next()).await.unwrap().unwrap();
        assert_eq!(status_of(first.status), ServingStatus::Serving);
    }
    // A gRPC-Web watcher over HTTP/1.1, and a client that never finishes its headers.
    let mut stuck = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stuck
        .write_all(b"POST /grpc.health.v1.Health/Check HTTP/1.1\r\n")
        .await
        .unwrap();
    let url = format!("{}/grpc.health.v1.Health/Watch", server.url());
    let headers = [("content-type", "application/grpc-web+proto")];
    let mut web = WebStream::open(Http::H1, &url, &headers, frame(&req(""))).await;
    let first = web.message().await.expect("the current status");
    assert_eq!(status_in(&first), ServingStatus::Serving);

    let start = Instant::now();
    server.signal(Signal::SIGTERM);
    for stream in [&mut whole, &mut payments] {
        let last = within(stream.next()).await.unwrap().unwrap();
        assert_eq!(status_of(last.status), ServingStatus::NotServing);
        let end = within(stream.next()).await.unwrap().unwrap_err();
        assert_eq!(end.code(), tonic::Code::Unavailable);
        assert!(end.message().contains("shutting down"), "{}", end.message());
    }
    let web = web.finish().await;
    assert_eq!(web.statuses(), [ServingStatus::NotServing]);
    assert_eq!(web.grpc_status(), Some("14"));

    let status = server
        .wait(Duration::from_secs(6))
        .expect("still running after the grace");
    assert_eq!(status.code(), Some(0));
    assert!(start.elapsed() < Duration::from_secs(6));
    drop(stuck);
}

#[tokio::test]
async fn ctrl_c_stops_an_idle_server_at_once() {
    let mut server = Binary::serve(&[]);
    server.signal(Signal::SIGINT);
    let status = server.wait(Duration::from_secs(5)).expect("still running");
    assert_eq!(status.code(), Some(0));
}
