//! List over native gRPC: every service with its status, and the cap.

use healthweb_proto::pb::{HealthListRequest, health_check_response::ServingStatus};
use tonic::Code;

use crate::util::{TestServer, status_of};

#[tokio::test]
async fn lists_every_registered_service() {
    let server = TestServer::start().await;
    server.registry.set("a", ServingStatus::Serving).unwrap();
    server.registry.set("b", ServingStatus::NotServing).unwrap();
    server.registry.set("gone", ServingStatus::Serving).unwrap();
    server.registry.remove("gone").unwrap();
    let _unknown_watch = server.registry.watch("watched-only");
    let mut client = server.client().await;
    let list = client
        .list(HealthListRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut got: Vec<(String, ServingStatus)> = list
        .statuses
        .into_iter()
        .map(|(name, response)| (name, status_of(response.status)))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (String::new(), ServingStatus::Serving),
            ("a".into(), ServingStatus::Serving),
            ("b".into(), ServingStatus::NotServing),
        ]
    );
}

#[tokio::test]
async fn more_than_the_limit_is_resource_exhausted() {
    let server = TestServer::start().await;
    for i in 0..99 {
        server
            .registry
            .set(&format!("s{i}"), ServingStatus::Serving)
            .unwrap();
    }
    let mut client = server.client().await;
    // 100 services with "": the spec's limit, still listed.
    let list = client
        .list(HealthListRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.statuses.len(), 100);
    server
        .registry
        .set("one-more", ServingStatus::Serving)
        .unwrap();
    let err = client.list(HealthListRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.message().contains("101 services"), "{}", err.message());
}

#[tokio::test]
async fn the_limit_is_configurable() {
    let server = TestServer::with(|s| s.health.max_list = 1).await;
    let mut client = server.client().await;
    assert!(client.list(HealthListRequest {}).await.is_ok());
    server.registry.set("a", ServingStatus::Serving).unwrap();
    let err = client.list(HealthListRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
}
