//! The admin HTTP API: change statuses at run time, for draining an instance
//! before maintenance (as Envoy's `/healthcheck/fail`). `healthweb set` and
//! `healthweb remove` are its command-line client.
//!
//! # Routes
//! - `GET /services`: every service and its status, and how many Watch streams
//!   follow each watched name, as JSON.
//! - `PUT /services?name=NAME` with `{"status": "SERVING"}` (or the JSON string
//!   `"SERVING"`): set it.
//! - `DELETE /services?name=NAME`: remove it (Check then answers NOT_FOUND).
//! - `POST /shutdown`: every service NOT_SERVING, later changes ignored.
//! - `POST /resume`: every service SERVING, changes accepted again.
//! - `GET /maintenance`: the maintenance windows open now, configured and ad hoc.
//! - `POST /maintenance` with `{"services": ["db-*"], "duration": "30m",
//!   "reason": "..."}`: opens a window now; its alerts are held until it ends.
//! - `DELETE /maintenance/ID`: ends an ad hoc window now.
//!
//! Off unless `--admin-listen` is given, and loopback-only unless the operator
//! also passes `--admin-allow-remote`. Every request passes [`guard`] first: no
//! page in a browser can reach it, and with `--admin-token-file` nobody without
//! the token can.
//!
//! # Layout
//! - [`guard`]: who may call: Host, Origin, `Sec-Fetch-Site`, content type, token.

pub mod guard;

use axum::{
    Router,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use bytes::Bytes;
use serde::Deserialize;

use crate::{
    alert::{
        maintenance::{Maintenance, OpenError},
        now_ms,
    },
    registry::{Cause, HealthRegistry, Reason, RegistryError},
    status::StatusWord,
};

/// The admin API's routes, behind `guard`.
pub fn router(registry: HealthRegistry, maintenance: Maintenance, guard: guard::Guard) -> Router {
    let windows = Router::new()
        .route("/maintenance", get(windows).post(open_window))
        .route("/maintenance/{id}", delete(end_window))
        .with_state(maintenance);
    Router::new()
        .route("/services", get(list).put(set).delete(remove))
        .route("/shutdown", post(shutdown))
        .route("/resume", post(resume))
        .with_state(registry)
        .merge(windows)
        .layer(axum::middleware::from_fn_with_state(guard, guard::check))
}

async fn windows(State(maintenance): State<Maintenance>) -> Response {
    let now = now_ms();
    if let Err(error) = maintenance.refresh(now).await {
        return store_error(&error);
    }
    axum::Json(serde_json::json!({ "windows": maintenance.list(now) })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWindow {
    services: Vec<String>,
    #[serde(deserialize_with = "crate::upstream::duration")]
    duration: std::time::Duration,
    #[serde(default)]
    reason: String,
}

async fn open_window(State(maintenance): State<Maintenance>, body: Bytes) -> Response {
    let window: NewWindow = match serde_json::from_slice(&body) {
        Ok(window) => window,
        Err(error) => {
            let shape = r#"send {"services": ["db-*"], "duration": "30m", "reason": "..."}"#;
            return (StatusCode::BAD_REQUEST, format!("{error}: {shape}\n")).into_response();
        }
    };
    let opened = maintenance
        .add(window.services, window.duration, window.reason, now_ms())
        .await;
    match opened {
        Ok(w) => (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({
                "id": w.id, "services": w.services, "start_ms": w.start_ms,
                "end_ms": w.end_ms, "reason": w.reason,
            })),
        )
            .into_response(),
        Err(OpenError::Store(error)) => store_error(&error),
        Err(error @ OpenError::Full(_)) => {
            (StatusCode::CONFLICT, format!("{error}\n")).into_response()
        }
        Err(error) => (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response(),
    }
}

async fn end_window(
    State(maintenance): State<Maintenance>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    match maintenance.end(&id, now_ms()).await {
        Ok(Some(_)) => format!("maintenance window {id} ended\n").into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            format!("no maintenance window {id:?} (GET /maintenance lists them)\n"),
        )
            .into_response(),
        Err(error) => store_error(&error),
    }
}

fn store_error(error: &crate::history::StoreError) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the history store cannot be used now: {error}\n"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Name {
    name: Option<String>,
}

fn missing_name() -> Response {
    (
        StatusCode::BAD_REQUEST,
        "missing ?name=SERVICE (use ?name= for the whole server)\n",
    )
        .into_response()
}

async fn list(State(registry): State<HealthRegistry>) -> Response {
    let services: serde_json::Map<String, serde_json::Value> = registry
        .list()
        .into_iter()
        .map(|(name, status)| (name, status.as_str_name().into()))
        .collect();
    axum::Json(serde_json::json!({
        "services": services,
        "shut_down": registry.is_shut_down(),
        "watchers": registry.watchers(),
    }))
    .into_response()
}

async fn set(State(registry): State<HealthRegistry>, query: Query<Name>, body: Bytes) -> Response {
    let Some(name) = query.0.name else {
        return missing_name();
    };
    let word = match status_of(&body) {
        Ok(word) => word,
        Err(message) => return (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response(),
    };
    match registry.set_because(&name, word.0, Reason::of(Cause::Admin)) {
        Ok(()) => format!("{name:?} is {word}\n").into_response(),
        Err(error) => registry_error(error),
    }
}

/// The status in a `PUT /services` body: `{"status": "SERVING"}`, or just `"SERVING"`.
fn status_of(body: &[u8]) -> Result<StatusWord, String> {
    let shape = || r#"send {"status": "SERVING"} (SERVING, NOT_SERVING or UNKNOWN) as JSON"#;
    let word = match serde_json::from_slice(body) {
        Ok(serde_json::Value::String(word)) => word,
        Ok(serde_json::Value::Object(mut fields)) => match fields.remove("status") {
            Some(serde_json::Value::String(word)) => word,
            _ => return Err(shape().to_owned()),
        },
        Ok(_) => return Err(shape().to_owned()),
        Err(error) => return Err(format!("the body is not JSON ({error}): {}", shape())),
    };
    word.parse()
        .map_err(|e: crate::status::BadStatus| e.to_string())
}

async fn remove(State(registry): State<HealthRegistry>, query: Query<Name>) -> Response {
    let Some(name) = query.0.name else {
        return missing_name();
    };
    match registry.remove_because(&name, Reason::of(Cause::Admin)) {
        Ok(()) => format!("{name:?} removed\n").into_response(),
        Err(error) => registry_error(error),
    }
}

async fn shutdown(State(registry): State<HealthRegistry>) -> &'static str {
    registry.shutdown_because(Reason::of(Cause::Admin));
    "every service is NOT_SERVING; changes are ignored until POST /resume\n"
}

async fn resume(State(registry): State<HealthRegistry>) -> &'static str {
    registry.resume_because(Reason::of(Cause::Admin));
    "every service is SERVING; changes are accepted again\n"
}

fn registry_error(error: RegistryError) -> Response {
    let code = match error {
        RegistryError::Unknown(_) => StatusCode::NOT_FOUND,
        RegistryError::ShutDown => StatusCode::CONFLICT,
        RegistryError::NotSettable | RegistryError::ServerEntry => StatusCode::BAD_REQUEST,
    };
    (code, format!("{error}\n")).into_response()
}
