//! Server reflection: grpcurl and `buf curl` discover Health without the proto,
//! over native gRPC (v1 and v1alpha) and over gRPC-Web.

use futures_util::StreamExt;
use tonic_reflection::pb::{v1, v1alpha};

use crate::util::{TestServer, web_unary, within};

#[tokio::test]
async fn v1_lists_health_and_serves_its_file() {
    let server = TestServer::start().await;
    let channel = tonic::transport::Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let requests = futures_util::stream::iter([
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        },
        v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "grpc.health.v1.Health".into(),
                ),
            ),
        },
    ]);
    let mut replies = client
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();
    let first = within(replies.next()).await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        first.message_response
    else {
        panic!("not a service list: {first:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    let second = within(replies.next()).await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        second.message_response
    else {
        panic!("not a file: {second:?}");
    };
    let file = prost_types_name(&files.file_descriptor_proto[0]);
    assert_eq!(file, "grpc/health/v1/health.proto");
}

/// The file name is field 1 of a FileDescriptorProto; no need for prost-types here.
fn prost_types_name(bytes: &[u8]) -> String {
    assert_eq!(bytes[0], 0x0a);
    let len = bytes[1] as usize;
    String::from_utf8(bytes[2..2 + len].to_vec()).unwrap()
}

#[tokio::test]
async fn v1alpha_over_grpc_web_lists_health() {
    let server = TestServer::start().await;
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let url = format!(
        "{}/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        server.url()
    );
    let response: v1alpha::ServerReflectionResponse = web_unary(&url, &request).await;
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("not a service list");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
            "healthweb.v1.History",
            "healthweb.v1.Statuses"
        ]
    );
}
