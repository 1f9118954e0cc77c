//! The plain HTTP routes beside gRPC on the one port.
//!
//! # Routes
//! - `GET /healthz[?service=NAME]`: 200 SERVING, 503 otherwise, 404 unknown; one
//!   word, or JSON with `Accept: application/json` (with what the upstream monitor
//!   saw, for a monitored service).
//! - `GET /upstreams[?service=NAME&service=NAME...]`: what the upstream monitor saw
//!   last, as JSON: of every upstream, or of those named (the status page asks for
//!   the rows in view, not for 10,000 upstreams every two seconds).
//! - `GET /badge/{service}.svg`: a status badge ([`crate::badge`]); 404 (and a grey
//!   badge) for an unknown service. Cacheable for a few seconds.
//! - `GET /metrics`: Prometheus metrics ([`crate::metrics`]).
//! - `GET /instance`: this instance, as JSON: its replica name, how its history
//!   store is doing, and (with replicas) the fleet it sees.
//! - everything else: the static status page from the www directory.

use std::{collections::BTreeMap, convert::Infallible, path::Path};

use axum::{
    Router,
    body::Body,
    extract::{Path as UrlPath, Query, State},
    http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use healthweb_proto::pb::health_check_response::ServingStatus;
use serde::Deserialize;
use tower_http::services::ServeDir;

use crate::{
    alert::maintenance::Maintenance,
    badge::Badge,
    fleet::View,
    history::{History, StoreState, now_ms, uptime},
    metrics::Metrics,
    monitor::Reports,
    registry::HealthRegistry,
};

/// What the plain routes read.
#[derive(Clone)]
pub struct WebState {
    /// The statuses.
    pub registry: HealthRegistry,
    /// What the upstream monitor saw last.
    pub upstreams: Reports,
    /// Every recorded change, for the badges' uptime.
    pub history: History,
    /// Everything `/metrics` shows.
    pub metrics: Metrics,
    /// What `/instance` shows.
    pub instance: Instance,
    /// The maintenance windows, for `/alerts` (none: no windows).
    pub maintenance: Option<Maintenance>,
}

/// This instance: its name, its history store's health, the fleet it sees.
#[derive(Clone, Default)]
pub struct Instance {
    /// The replica's name (`--replica-id`).
    pub replica: String,
    /// How the history store is doing.
    pub history: StoreState,
    /// With replicas: the fleet.
    pub fleet: Option<View>,
}

/// How long a badge may be cached.
const BADGE_MAX_AGE: &str = "public, max-age=5";

/// How long a badge waits for its uptime; without it, it shows the status alone.
const BADGE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// `/healthz`, `/upstreams`, `/badge/…`, `/metrics`, and the files of `www`.
pub fn router(www: &Path, state: WebState) -> Router {
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
        .route("/badge/{*file}", get(badge))
        .route("/metrics", get(metrics))
        .route("/instance", get(instance))
        .route("/alerts", get(alerts))
        .with_state(state)
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

/// The query's `service` pairs, any number of them (`Query<Vec<(String, String)>>`
/// keeps repeated keys, which a struct would not).
async fn upstreams_json(
    State(state): State<WebState>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response<Body> {
    let reports = state.upstreams.read().unwrap_or_else(|e| e.into_inner());
    let mut named = query.iter().filter(|(key, _)| key == "service").peekable();
    // Written while the lock is held, instead of a copy of every report.
    let response = if named.peek().is_none() {
        axum::Json(&*reports).into_response()
    } else {
        let picked: BTreeMap<&String, _> = named
            .filter_map(|(_, name)| reports.get_key_value(name))
            .collect();
        axum::Json(picked).into_response()
    };
    drop(reports);
    no_store(response)
}

async fn instance(State(state): State<WebState>) -> Response<Body> {
    let Instance {
        replica,
        history,
        fleet,
    } = &state.instance;
    let body = serde_json::json!({
        "replica": replica,
        "history": history.snapshot(),
        "fleet": fleet.as_ref().map(View::snapshot),
    });
    no_store(axum::Json(body).into_response())
}

/// Per service: the alert firing (rule, since), the last notification's fate,
/// and the maintenance window over it; for the page.
async fn alerts(State(state): State<WebState>) -> Response<Body> {
    let store = state.history.alerts();
    let now = now_ms();
    let week = 7 * 24 * 3600 * 1000;
    let (firing, notices) =
        match tokio::join!(store.alert_states(), store.recent_notices(now - week)) {
            (Ok(firing), Ok(notices)) => (firing, notices),
            (Err(error), _) | (_, Err(error)) => {
                let message = format!("the history store cannot be used now: {error}\n");
                return (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
            }
        };
    let mut services = serde_json::Map::new();
    for name in state.registry.list().into_keys() {
        let alert = firing.iter().find(|a| a.service == name);
        // The newest notification about it (they come oldest first).
        let last = notices.iter().rev().find(|n| n.notice.service == name);
        let until = state.maintenance.as_ref().and_then(|m| m.until(&name, now));
        if alert.is_none() && last.is_none() && until.is_none() {
            continue;
        }
        services.insert(
            name,
            serde_json::json!({
                "firing": alert.map(|a| serde_json::json!({
                    "rule": a.rule, "since_ms": a.since_ms, "fired_ms": a.fired_ms,
                })),
                "last": last.map(|n| serde_json::json!({
                    "kind": n.notice.kind, "receiver": n.notice.receiver,
                    "state": n.state.as_str(), "attempts": n.attempts,
                    "at_ms": n.last_ms, "outcome": n.outcome,
                })),
                "maintenance_until_ms": until,
            }),
        );
    }
    let windows = state
        .maintenance
        .as_ref()
        .map(|m| m.list(now))
        .unwrap_or_default();
    no_store(
        axum::Json(serde_json::json!({ "services": services, "windows": windows })).into_response(),
    )
}

async fn metrics(State(state): State<WebState>) -> Response<Body> {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    no_store(response)
}

async fn badge(State(state): State<WebState>, UrlPath(file): UrlPath<String>) -> Response<Body> {
    let Some(service) = file.strip_suffix(".svg") else {
        return (
            StatusCode::NOT_FOUND,
            "badges are /badge/SERVICE.svg (/badge/.svg for the whole server)\n",
        )
            .into_response();
    };
    let status = state.registry.check(service);
    let uptime = match status {
        Some(_) => day_uptime(&state, service).await,
        None => None,
    };
    let badge = Badge::new(service, status.map(|s| s.as_str_name()), uptime);
    let code = if status.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    let mut response = (code, badge.svg()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(BADGE_MAX_AGE),
    );
    response
}

/// The last 24 hours' uptime, maintenance apart, if history has recorded any of
/// them (and answers within a second: a badge never waits on a store that is away).
async fn day_uptime(state: &WebState, service: &str) -> Option<f64> {
    let now = now_ms();
    let day = 24 * 3600 * 1000;
    let rows = state.history.store().timeline(service, now - day..now + 1);
    let rows = tokio::time::timeout(BADGE_WAIT, rows).await.ok()?.ok()?;
    let held = match &state.maintenance {
        Some(m) => {
            let held = m.intervals(service, now - day, now);
            tokio::time::timeout(BADGE_WAIT, held).await.ok()?.ok()?
        }
        None => Vec::new(),
    };
    let span = uptime::span(&rows, now - day, now, &held);
    (span.recorded_ms > 0).then(|| span.serving())
}

async fn healthz(
    State(WebState {
        registry,
        upstreams,
        ..
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
