//! Watch over native gRPC: the current status at once, one message per change,
//! SERVICE_UNKNOWN without ending, slow watchers, and clients that go away.

use std::time::Duration;

use futures_util::StreamExt;
use healthweb_proto::pb::{HealthCheckResponse, health_check_response::ServingStatus};
use tonic::Streaming;

use crate::util::{TestServer, req, status_of, within};

async fn next(stream: &mut Streaming<HealthCheckResponse>) -> ServingStatus {
    status_of(within(stream.next()).await.unwrap().unwrap().status)
}

async fn quiet(stream: &mut Streaming<HealthCheckResponse>) -> bool {
    tokio::time::timeout(Duration::from_millis(200), stream.next())
        .await
        .is_err()
}

#[tokio::test]
async fn current_status_then_each_change_and_no_repeats() {
    let server = TestServer::start().await;
    server.registry.set("a", ServingStatus::Serving).unwrap();
    let mut client = server.client().await;
    let mut stream = client.watch(req("a")).await.unwrap().into_inner();
    assert_eq!(next(&mut stream).await, ServingStatus::Serving);
    server.registry.set("a", ServingStatus::Serving).unwrap();
    assert!(
        quiet(&mut stream).await,
        "setting the same status sent a message"
    );
    server.registry.set("a", ServingStatus::NotServing).unwrap();
    assert_eq!(next(&mut stream).await, ServingStatus::NotServing);
    server.registry.set("a", ServingStatus::Unknown).unwrap();
    assert_eq!(next(&mut stream).await, ServingStatus::Unknown);
    assert!(quiet(&mut stream).await);
}

#[tokio::test]
async fn unknown_service_stays_open_until_registered_and_after_removal() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut stream = client.watch(req("later")).await.unwrap().into_inner();
    assert_eq!(next(&mut stream).await, ServingStatus::ServiceUnknown);
    assert!(quiet(&mut stream).await, "the stream must stay open");
    server
        .registry
        .set("later", ServingStatus::Serving)
        .unwrap();
    assert_eq!(next(&mut stream).await, ServingStatus::Serving);
    server.registry.remove("later").unwrap();
    assert_eq!(next(&mut stream).await, ServingStatus::ServiceUnknown);
    server
        .registry
        .set("later", ServingStatus::NotServing)
        .unwrap();
    assert_eq!(next(&mut stream).await, ServingStatus::NotServing);
}

#[tokio::test]
async fn a_slow_watcher_holds_nobody_back_and_sees_the_latest() {
    let server = TestServer::serving([("flappy", ServingStatus::Serving)]).await;
    let mut client = server.client().await;
    let mut slow = client.watch(req("flappy")).await.unwrap().into_inner();
    let mut fast = client.watch(req("flappy")).await.unwrap().into_inner();
    for i in 0..1000 {
        let status = if i % 2 == 0 {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        server.registry.set("flappy", status).unwrap();
    }
    server
        .registry
        .set("flappy", ServingStatus::Unknown)
        .unwrap();
    // `slow` has read nothing so far; `fast` still gets to the end.
    for stream in [&mut fast, &mut slow] {
        let mut seen = Vec::new();
        while seen.last() != Some(&ServingStatus::Unknown) {
            seen.push(next(stream).await);
        }
        assert!(seen.windows(2).all(|w| w[0] != w[1]), "a repeat: {seen:?}");
        assert!(quiet(stream).await);
    }
}

#[tokio::test]
async fn a_client_that_goes_away_leaves_no_stream_or_task_behind() {
    let server = TestServer::start().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let idle_tasks = metrics.num_alive_tasks();
    let idle_channels = server.registry.channel_count();
    {
        let mut client = server.client().await;
        let mut known = client.watch(req("")).await.unwrap().into_inner();
        let mut unknown = client
            .watch(req("nobody-registers-me"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(next(&mut known).await, ServingStatus::Serving);
        assert_eq!(next(&mut unknown).await, ServingStatus::ServiceUnknown);
        assert_eq!(server.registry.watcher_count(""), 1);
        assert_eq!(server.registry.channel_count(), idle_channels + 1);
        // Mid-Watch, the client vanishes: streams, channel and connection dropped.
    }
    within(async {
        while server.registry.watcher_count("") != 0
            || server.registry.channel_count() != idle_channels
            || metrics.num_alive_tasks() != idle_tasks
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
