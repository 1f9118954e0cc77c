//! List over native gRPC: every service with its status, and the cap.

use healthweb_proto::pb::{
    HealthListRequest, HealthListResponse, health_check_response::ServingStatus,
};
use tonic::{Code, Status};

use crate::util::{TestServer, status_of};

/// List's answer from `server`.
async fn list(server: &TestServer) -> Result<HealthListResponse, Status> {
    let reply = server.client().await.list(HealthListRequest {}).await?;
    Ok(reply.into_inner())
}

#[tokio::test]
async fn lists_every_registered_service() {
    let server = TestServer::start().await;
    server.registry.set("a", ServingStatus::Serving).unwrap();
    server.registry.set("b", ServingStatus::NotServing).unwrap();
    server.registry.set("gone", ServingStatus::Serving).unwrap();
    server.registry.remove("gone").unwrap();
    let _unknown_watch = server.registry.watch("watched-only");
    let mut got: Vec<(String, ServingStatus)> = list(&server)
        .await
        .unwrap()
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
    let server =
        TestServer::serving((0..99).map(|i| (format!("s{i}"), ServingStatus::Serving))).await;
    // 100 services with "": the spec's limit, still listed.
    assert_eq!(list(&server).await.unwrap().statuses.len(), 100);
    server.set([("one-more", ServingStatus::Serving)]);
    let err = list(&server).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.message().contains("101 services"), "{}", err.message());
}

#[tokio::test]
async fn the_limit_is_configurable() {
    let server = TestServer::with(|s| s.health.max_list = 1).await;
    assert!(list(&server).await.is_ok());
    server.set([("a", ServingStatus::Serving)]);
    let err = list(&server).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
}
