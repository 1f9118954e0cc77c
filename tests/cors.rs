//! CORS: same-origin only by default; listed origins may embed the client;
//! `*` only when asked for.

use http::Method;

use crate::util::{Http, Raw, TestServer, frame, raw, req};

async fn server(origins: &[&str]) -> TestServer {
    TestServer::with(|s| s.cors.origins = origins.iter().map(|o| o.to_string()).collect()).await
}

async fn preflight(server: &TestServer, origin: &str) -> Raw {
    let url = format!("{}/grpc.health.v1.Health/Check", server.url());
    let headers = [
        ("origin", origin),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "content-type,x-grpc-web,x-user-agent,grpc-timeout",
        ),
    ];
    raw(Http::H1, &url, Method::OPTIONS, &headers, "").await
}

async fn check_from(server: &TestServer, origin: &str) -> Raw {
    let url = format!("{}/grpc.health.v1.Health/Check", server.url());
    let headers = [
        ("origin", origin),
        ("content-type", "application/grpc-web+proto"),
        ("x-grpc-web", "1"),
    ];
    raw(Http::H1, &url, Method::POST, &headers, frame(&req(""))).await
}

fn header<'a>(raw: &'a Raw, name: &str) -> Option<&'a str> {
    raw.headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn an_allowed_origin_gets_preflight_and_exposed_headers() {
    let server = server(&["https://app.example"]).await;
    let pre = preflight(&server, "https://app.example").await;
    assert_eq!(pre.status, 200);
    assert_eq!(
        header(&pre, "access-control-allow-origin"),
        Some("https://app.example")
    );
    let allowed = header(&pre, "access-control-allow-headers").unwrap();
    for name in ["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"] {
        assert!(allowed.contains(name), "{name} not in {allowed}");
    }
    let call = check_from(&server, "https://app.example").await;
    assert_eq!(
        header(&call, "access-control-allow-origin"),
        Some("https://app.example")
    );
    let exposed = header(&call, "access-control-expose-headers").unwrap();
    assert_eq!(exposed, "grpc-status,grpc-message,grpc-status-details-bin");
}

#[tokio::test]
async fn other_origins_are_refused() {
    for server in [server(&["https://app.example"]).await, server(&[]).await] {
        let pre = preflight(&server, "https://evil.example").await;
        assert_eq!(header(&pre, "access-control-allow-origin"), None);
        let call = check_from(&server, "https://evil.example").await;
        assert_eq!(header(&call, "access-control-allow-origin"), None);
    }
}

#[tokio::test]
async fn star_only_when_given() {
    let server = server(&["*"]).await;
    let pre = preflight(&server, "https://anyone.example").await;
    assert_eq!(header(&pre, "access-control-allow-origin"), Some("*"));
}
