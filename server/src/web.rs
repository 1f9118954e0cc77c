//! The plain HTTP routes beside gRPC on the one port.
//!
//! # Routes
//! - `GET /healthz[?service=NAME]`: 200 SERVING, 503 otherwise, 404 unknown; one
//!   word, or JSON with `Accept: application/json` (with what the upstream monitor
//!   saw, for a monitored service).
//! - `GET /upstreams`: what the upstream monitor saw last, as JSON.
//! - everything else: the static status page from the www directory.

use std::{convert::Infallible, path::Path};

use axum::{
    Router,
    body::Body,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use healthweb_proto::pb::health_check_response::ServingStatus;
use serde::Deserialize;
use tower_http::services::ServeDir;

use crate::{monitor::Reports, registry::HealthRegistry};

#[derive(Clone)]
struct WebState {
    registry: HealthRegistry,
    upstreams: Reports,
}

/// `/healthz`, `/upstreams`, and the files of `www`.
pub fn router(www: &Path, registry: HealthRegistry, upstreams: Reports) -> Router {
    let not_found = tower::service_fn(|req: Request<Body>| async move {
        Ok::<_, Infallible>(
            (
                StatusCode::NOT_FOUND,
                format!("not found: {}\n", req.uri().path()),
            )
                .into_response(),
        )
    });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/upstreams", get(upstreams_json))
        .with_state(WebState {
            registry,
            upstreams,
        })
        .fallback_service(
            ServeDir::new(www)
                .append_index_html_on_directories(true)
                .not_found_service(not_found),
        )
}

#[derive(Deserialize)]
struct HealthzQuery {
    service: Option<String>,
}

fn no_store(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn upstreams_json(State(state): State<WebState>) -> Response<Body> {
    let reports = state
        .upstreams
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    no_store(axum::Json(reports).into_response())
}

async fn healthz(
    State(WebState {
        registry,
        upstreams,
    }): State<WebState>,
    Query(query): Query<HealthzQuery>,
    headers: HeaderMap,
) -> Response<Body> {
    let service = query.service.unwrap_or_default();
    let json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let (code, word) = match registry.check(&service) {
        Some(ServingStatus::Serving) => (StatusCode::OK, "SERVING"),
        Some(status) => (StatusCode::SERVICE_UNAVAILABLE, status.as_str_name()),
        None => (StatusCode::NOT_FOUND, "SERVICE_UNKNOWN"),
    };
    no_store(if json {
        let mut body = serde_json::json!({ "service": service, "status": word });
        if let Some(report) = upstreams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&service)
        {
            body["upstream"] = serde_json::to_value(report).unwrap_or_default();
        }
        (code, axum::Json(body)).into_response()
    } else if code == StatusCode::NOT_FOUND {
        (code, format!("unknown service {service:?}\n")).into_response()
    } else {
        (code, format!("{word}\n")).into_response()
    })
}
