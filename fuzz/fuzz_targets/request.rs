//! The request path, in process: any path, content type, protocol version,
//! `grpc-timeout` and body through the whole app: classification, tonic-web's
//! binary and base64 decoding, the metrics and deadline layers, tonic's framing, the
//! service-name checks and the call deadline. It must always answer, never panic,
//! and every gRPC answer must carry a grpc-status where its protocol puts it.
#![no_main]

use std::{sync::LazyLock, time::Duration};

use bytes::Bytes;
use healthweb_proto::wire;
use healthweb_server::{
    HealthRegistry, Settings,
    history::{History, HistorySettings},
    metrics::Metrics,
    monitor::Reports,
    routes::{self, App},
    web::WebState,
};
use http::{Method, Request, Version};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const PATHS: [&str; 9] = [
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.health.v1.Health/List",
    "/healthweb.v1.History/Transitions",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.health.v1.Health/Nope",
    "/healthz?service=x",
    "/acme.Billing/Charge",
];
const TYPES: [Option<&str>; 7] = [
    Some("application/grpc-web"),
    Some("application/grpc-web+proto"),
    Some("application/grpc-web-text"),
    Some("application/grpc-web-text+proto"),
    Some("application/grpc"),
    Some("text/plain"),
    None,
];
const TIMEOUTS: [Option<&str>; 5] = [None, Some("1S"), Some("0m"), Some("5x"), Some("99999999n")];

// Paused time: a Watch without a deadline ends when the 1-hour guard fires,
// which the paused clock reaches at once.
static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
});

static APP: LazyLock<App> = LazyLock::new(|| {
    let _guard = RUNTIME.enter();
    let registry = HealthRegistry::new();
    registry
        .set("payments", healthweb_client::ServingStatus::NotServing)
        .unwrap();
    let history = History::open(&HistorySettings {
        path: None,
        ..HistorySettings::default()
    })
    .unwrap();
    let state = WebState {
        registry,
        upstreams: Reports::default(),
        history,
        metrics: Metrics::new(),
    };
    routes::app(&Settings::default(), state, None, CancellationToken::new())
});

fuzz_target!(|data: &[u8]| {
    let [path, kind, shape, timeout, body @ ..] = data else {
        return;
    };
    let path = PATHS[*path as usize % PATHS.len()];
    let content_type = TYPES[*kind as usize % TYPES.len()];
    let h2 = shape & 1 != 0;
    let method = if shape & 2 != 0 {
        Method::GET
    } else {
        Method::POST
    };
    let mut request = Request::builder().method(method).uri(path).version(if h2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    });
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
        if shape & 4 != 0 {
            request = request.header("accept", content_type);
        }
    }
    if shape & 8 != 0 {
        request = request.header("grpc-encoding", "identity");
    }
    if let Some(timeout) = TIMEOUTS[*timeout as usize % TIMEOUTS.len()] {
        request = request.header("grpc-timeout", timeout);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    RUNTIME.block_on(async {
        let response = APP.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let collected = tokio::time::timeout(Duration::from_secs(3600), body.collect()).await;
        let Ok(Ok(collected)) = collected else {
            return;
        };
        let answer_type = parts
            .headers
            .get("content-type")
            .and_then(|t| t.to_str().ok())
            .unwrap_or("");
        if parts.status != 200 || !answer_type.starts_with("application/grpc") {
            return;
        }
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let bytes = collected.to_bytes();
        let has_status = parts.headers.contains_key("grpc-status")
            || trailers.contains_key("grpc-status")
            || web_trailer_has_status(answer_type, &bytes);
        assert!(
            has_status,
            "a gRPC answer without grpc-status: {parts:?} {bytes:?}"
        );
    });
});

/// Whether a gRPC-Web body's trailer frame names a grpc-status.
fn web_trailer_has_status(content_type: &str, body: &[u8]) -> bool {
    let binary = if wire::Framing::of(content_type) == Some(wire::Framing::WebText) {
        let mut text = wire::TextDecoder::default();
        match text.push(body) {
            Ok(bytes) if text.is_whole() => bytes,
            _ => return false,
        }
    } else {
        body.to_vec()
    };
    let mut frames = wire::FrameDecoder::default();
    frames.push(&binary);
    std::iter::from_fn(|| frames.next_frame()).any(|frame| match frame {
        wire::Frame::Trailers(trailers) => trailers.iter().any(|(name, _)| name == "grpc-status"),
        wire::Frame::Message { .. } => false,
    })
}
