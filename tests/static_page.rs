//! `/healthz` for Docker and Kubernetes probes, and the status page's files.

use healthweb_proto::pb::health_check_response::ServingStatus;
use http::Method;

use crate::util::{Http, TestServer, raw};

async fn get(url: &str, accept: Option<&str>) -> (u16, String, String) {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    let raw = raw(Http::H1, url, Method::GET, &headers, "").await;
    let ct = raw
        .headers
        .get("content-type")
        .map_or("", |v| v.to_str().unwrap())
        .to_owned();
    (
        raw.status.as_u16(),
        ct,
        String::from_utf8(raw.body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn healthz_follows_the_registry() {
    let server = TestServer::start().await;
    let url = server.url();
    assert_eq!(get(&format!("{url}/healthz"), None).await.2, "SERVING\n");
    assert_eq!(get(&format!("{url}/healthz"), None).await.0, 200);
    server
        .registry
        .set("db", ServingStatus::NotServing)
        .unwrap();
    let (code, _, body) = get(&format!("{url}/healthz?service=db"), None).await;
    assert_eq!((code, body.as_str()), (503, "NOT_SERVING\n"));
    let (code, _, body) = get(&format!("{url}/healthz?service=nope"), None).await;
    assert_eq!((code, body.as_str()), (404, "unknown service \"nope\"\n"));
    let (code, ct, body) = get(
        &format!("{url}/healthz?service=db"),
        Some("application/json"),
    )
    .await;
    assert_eq!(code, 503);
    assert_eq!(ct, "application/json");
    assert_eq!(body, r#"{"service":"db","status":"NOT_SERVING"}"#);
    server.registry.shutdown();
    assert_eq!(get(&format!("{url}/healthz"), None).await.0, 503);
    let head = raw(Http::H1, &format!("{url}/healthz"), Method::HEAD, &[], "").await;
    assert_eq!(head.status, 503);
}

#[tokio::test]
async fn serves_the_www_directory_with_content_types() {
    let www = tempfile::tempdir().unwrap();
    std::fs::write(
        www.path().join("index.html"),
        "<!doctype html><title>t</title>",
    )
    .unwrap();
    std::fs::create_dir(www.path().join("pkg")).unwrap();
    std::fs::write(www.path().join("pkg/client_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(www.path().join("app.js"), "export {}").unwrap();
    let server = TestServer::with(|s| s.www = www.path().to_owned()).await;
    let url = server.url();
    for (path, code, ct) in [
        ("/", 200, "text/html"),
        ("/pkg/client_bg.wasm", 200, "application/wasm"),
        ("/app.js", 200, "text/javascript"),
    ] {
        let got = get(&format!("{url}{path}"), None).await;
        assert_eq!((got.0, got.1.as_str()), (code, ct), "{path}");
    }
    let (code, _, body) = get(&format!("{url}/missing.js"), None).await;
    assert_eq!((code, body.as_str()), (404, "not found: /missing.js\n"));
    let (code, _, _) = get(&format!("{url}/../Cargo.toml"), None).await;
    assert_eq!(code, 404);
}
