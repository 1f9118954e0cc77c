//! Check over native gRPC: statuses, NOT_FOUND, the whole server, name limits.

use healthweb_proto::pb::health_check_response::ServingStatus;
use tonic::Code;

use crate::util::{TestServer, req, status_of};

#[tokio::test]
async fn registered_services_answer_their_status() {
    let server = TestServer::serving([
        ("payments", ServingStatus::NotServing),
        ("search", ServingStatus::Unknown),
    ])
    .await;
    let mut client = server.client().await;
    for (name, want) in [
        ("", ServingStatus::Serving),
        ("payments", ServingStatus::NotServing),
        ("search", ServingStatus::Unknown),
    ] {
        let got = client.check(req(name)).await.unwrap().into_inner();
        assert_eq!(status_of(got.status), want, "{name:?}");
    }
}

#[tokio::test]
async fn unknown_and_removed_services_are_not_found_by_name() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let err = client.check(req("billing")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "unknown service \"billing\"");

    server
        .registry
        .set("billing", ServingStatus::Serving)
        .unwrap();
    assert!(client.check(req("billing")).await.is_ok());
    server.registry.remove("billing").unwrap();
    let err = client.check(req("billing")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn the_whole_server_follows_shutdown_and_resume() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    server.registry.shutdown();
    let got = client.check(req("")).await.unwrap().into_inner();
    assert_eq!(status_of(got.status), ServingStatus::NotServing);
    server.registry.resume();
    let got = client.check(req("")).await.unwrap().into_inner();
    assert_eq!(status_of(got.status), ServingStatus::Serving);
}

#[tokio::test]
async fn overlong_service_names_are_invalid_arguments() {
    let server = TestServer::with(|s| s.health.max_service_name = 8).await;
    let mut client = server.client().await;
    let err = client.check(req("ninechars")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("limit is 8"), "{}", err.message());
    let err = client.watch(req("ninechars")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        client.check(req("eight_ch")).await.unwrap_err().code(),
        Code::NotFound
    );
}
