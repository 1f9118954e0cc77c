//! The one service every caller reaches: it sorts each request into gRPC (native
//! or gRPC-Web) or plain HTTP before any of them does work.
//!
//! # Routes
//! - `POST /grpc.health.v1.Health/{Check,Watch,List}`: native gRPC over HTTP/2, and
//!   gRPC-Web binary and text over HTTP/1.1 and HTTP/2 (tonic-web).
//! - `POST /grpc.reflection.v1.ServerReflection/ServerReflectionInfo` and its
//!   `v1alpha` twin: server reflection, for grpcurl and `buf curl`.
//! - any other gRPC path: UNIMPLEMENTED, naming the method.
//! - `GET /healthz[?service=NAME]`: 200 SERVING, 503 otherwise, 404 unknown.
//! - `GET /upstreams`: what the upstream monitor saw last, as JSON.
//! - everything else: the static status page from the www directory.
//!
//! A request with a gRPC path but no gRPC content type gets a 415 that says what
//! to send; native gRPC over HTTP/1.1 gets a 400 that says to use gRPC-Web.
//! Only the gRPC routes sit behind tonic-web, which answers any other HTTP/1.1
//! request with a bare 400.

use std::{
    convert::Infallible,
    future::Future,
    path::PathBuf,
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    Router,
    body::Body,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version, header},
    response::IntoResponse,
    routing::get,
};
use futures_util::future::Either;
use healthweb_proto::pb::{health_check_response::ServingStatus, health_server::HealthServer};
use serde::Deserialize;
use tokio::sync::watch;
use tonic::server::NamedService;
use tower::{Service, ServiceExt};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    services::ServeDir,
};

use crate::{
    health::{HealthLimits, HealthService},
    monitor::Reports,
    registry::HealthRegistry,
};

/// What the router needs to know beyond the registry.
#[derive(Debug, Clone)]
pub struct RouteOptions {
    /// The directory served at `/`.
    pub www: PathBuf,
    /// Origins allowed to call from other pages (`*` allows any); empty: same-origin only.
    pub cors_origins: Vec<String>,
    /// Request headers allowed from other origins, on top of the gRPC-Web ones.
    pub cors_allow_headers: Vec<String>,
    /// Largest accepted gRPC request message, in bytes.
    pub max_request_message: usize,
    /// Limits of the Health service itself.
    pub health: HealthLimits,
    /// What the upstream monitor saw last, for `/upstreams` and `/healthz` JSON.
    pub upstreams: Reports,
}

impl Default for RouteOptions {
    fn default() -> Self {
        Self {
            www: PathBuf::from("www"),
            cors_origins: Vec::new(),
            cors_allow_headers: Vec::new(),
            max_request_message: 16 * 1024,
            health: HealthLimits::default(),
            upstreams: Reports::default(),
        }
    }
}

const GRPC_WEB_TYPES: [&str; 4] = [
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
];

/// Every gRPC method this server has, for routing and for the 415 check.
const GRPC_METHODS: [&str; 5] = [
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.health.v1.Health/List",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The error a CORS configuration can have.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// An origin or header that cannot appear in an HTTP header.
    #[error("invalid CORS value {0:?}: {1}")]
    Cors(String, String),
}

/// Builds the whole HTTP service: gRPC, gRPC-Web, `/healthz` and the page, behind CORS.
/// Watch streams end when `draining` turns true.
pub fn app(
    registry: HealthRegistry,
    options: &RouteOptions,
    draining: watch::Receiver<bool>,
) -> Result<App, RouteError> {
    let health = HealthServer::new(HealthService::new(
        registry.clone(),
        options.health.clone(),
        draining,
    ))
    .max_decoding_message_size(options.max_request_message);
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(healthweb_proto::FILE_DESCRIPTOR_SET)
    };
    let v1 = reflection()
        .build_v1()
        .expect("the embedded descriptor sets are valid")
        .max_decoding_message_size(options.max_request_message);
    let v1alpha = reflection()
        .build_v1alpha()
        .expect("the embedded descriptor sets are valid")
        .max_decoding_message_size(options.max_request_message);

    let grpc = Router::new()
        .route_service(GRPC_METHODS[0], grpc_route(health.clone()))
        .route_service(GRPC_METHODS[1], grpc_route(health.clone()))
        .route_service(GRPC_METHODS[2], grpc_route(health))
        .route_service(GRPC_METHODS[3], grpc_route(v1))
        .route_service(GRPC_METHODS[4], grpc_route(v1alpha))
        .fallback(unknown_method);
    let grpc = tonic_web::GrpcWebLayer::new().layer(grpc);

    let not_found = tower::service_fn(|req: Request<Body>| async move {
        Ok::<_, Infallible>(
            (
                StatusCode::NOT_FOUND,
                format!("not found: {}\n", req.uri().path()),
            )
                .into_response(),
        )
    });
    let web = Router::new()
        .route("/healthz", get(healthz))
        .route("/upstreams", get(upstreams))
        .with_state(WebState {
            registry,
            upstreams: options.upstreams.clone(),
        })
        .fallback_service(
            ServeDir::new(&options.www)
                .append_index_html_on_directories(true)
                .not_found_service(not_found),
        );

    let dispatch = Dispatch { grpc, web };
    let cors = match options.cors_origins.is_empty() {
        // Same-origin only: no browser is ever let in cross-origin, and same-origin
        // pages need no CORS headers, so the layer would only cost (8-14% of a Check).
        true => None,
        false => Some(cors(options)?.layer(dispatch.clone())),
    };
    Ok(App { dispatch, cors })
}

use tower::Layer;

fn grpc_route<S>(
    svc: S,
) -> impl Service<
    Request<Body>,
    Response = Response<tonic::body::Body>,
    Error = Infallible,
    Future: Send,
> + Clone
+ Send
+ Sync
+ 'static
where
    S: Service<
            Request<tonic::body::Body>,
            Response = Response<tonic::body::Body>,
            Error = Infallible,
            Future: Send + 'static,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
{
    svc.map_request(|req: Request<Body>| req.map(tonic::body::Body::new))
}

async fn unknown_method(uri: Uri) -> Response<Body> {
    let status = tonic::Status::unimplemented(format!(
        "unknown method {}: this server has grpc.health.v1.Health (Check, Watch, List) and server reflection",
        uri.path()
    ));
    status.into_http::<Body>()
}

fn cors(options: &RouteOptions) -> Result<CorsLayer, RouteError> {
    let origins = if options.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list = options
            .cors_origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o).map_err(|e| RouteError::Cors(o.clone(), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(list)
    };
    let mut allow = vec![
        header::CONTENT_TYPE,
        header::AUTHORIZATION,
        header::HeaderName::from_static("x-grpc-web"),
        header::HeaderName::from_static("x-user-agent"),
        header::HeaderName::from_static("grpc-timeout"),
    ];
    for name in &options.cors_allow_headers {
        allow.push(
            name.parse()
                .map_err(|_| RouteError::Cors(name.clone(), "not a header name".into()))?,
        );
    }
    Ok(CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(allow)
        .expose_headers([
            header::HeaderName::from_static("grpc-status"),
            header::HeaderName::from_static("grpc-message"),
            header::HeaderName::from_static("grpc-status-details-bin"),
        ])
        .max_age(std::time::Duration::from_secs(3600)))
}

#[derive(Deserialize)]
struct HealthzQuery {
    service: Option<String>,
}

#[derive(Clone)]
struct WebState {
    registry: HealthRegistry,
    upstreams: Reports,
}

async fn upstreams(State(state): State<WebState>) -> Response<Body> {
    let reports = state
        .upstreams
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut response = axum::Json(reports).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
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
    let mut response = if json {
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
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What to do with one request, decided from its headers alone.
enum Kind {
    Grpc,
    Web,
    Reject(StatusCode, String),
}

fn classify(method: &Method, version: Version, uri: &Uri, headers: &HeaderMap) -> Kind {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let grpc_path = GRPC_METHODS.contains(&uri.path());
    match content_type {
        Some(ct) if ct.starts_with("application/grpc-web") => {
            if !GRPC_WEB_TYPES.contains(&ct) {
                return unsupported(ct);
            }
            if method != Method::POST {
                return not_post(method);
            }
            Kind::Grpc
        }
        Some(ct) if ct.starts_with("application/grpc") => {
            if ct != "application/grpc" && ct != "application/grpc+proto" {
                return unsupported(ct);
            }
            if version != Version::HTTP_2 {
                return Kind::Reject(
                    StatusCode::BAD_REQUEST,
                    "native gRPC (application/grpc) needs HTTP/2 (h2c with prior knowledge); \
                     over HTTP/1.1 send application/grpc-web or application/grpc-web-text\n"
                        .into(),
                );
            }
            if method != Method::POST {
                return not_post(method);
            }
            Kind::Grpc
        }
        _ if grpc_path => unsupported(content_type.unwrap_or("(none)")),
        _ => Kind::Web,
    }
}

fn unsupported(content_type: &str) -> Kind {
    Kind::Reject(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "unsupported content-type {content_type}: gRPC methods take application/grpc \
             (HTTP/2), {}\n",
            GRPC_WEB_TYPES.join(", ")
        ),
    )
}

fn not_post(method: &Method) -> Kind {
    Kind::Reject(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("gRPC methods take POST, not {method}\n"),
    )
}

/// tonic rejects an oversize request message with OUT_OF_RANGE; the gRPC status-code
/// spec says RESOURCE_EXHAUSTED ("request message larger than max"), as grpc-go and
/// grpc-java answer. The rejection is always a trailers-only response, so the
/// status is a header here. Keyed on tonic's wording, pinned by the bad-input tests.
fn too_large_is_resource_exhausted(headers: &mut HeaderMap) {
    let too_large = headers.get("grpc-status").is_some_and(|s| s == "11")
        && headers.get("grpc-message").is_some_and(|m| {
            m.as_bytes()
                .starts_with(b"Error,%20decoded%20message%20length%20too%20large")
        });
    if too_large {
        headers.insert("grpc-status", HeaderValue::from_static("8"));
    }
}

/// The service that sends each request to gRPC or to the plain routes.
#[derive(Clone)]
struct Dispatch {
    grpc: tonic_web::GrpcWebService<Router>,
    web: Router,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<B> Service<Request<B>> for Dispatch
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + std::fmt::Display,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Both inner services are axum routers, which are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match classify(req.method(), req.version(), req.uri(), req.headers()) {
            Kind::Grpc => {
                let future = self.grpc.call(req.map(Body::new));
                Box::pin(async move {
                    let mut response = future.await?;
                    too_large_is_resource_exhausted(response.headers_mut());
                    Ok(response.map(Body::new))
                })
            }
            Kind::Web => {
                let future = self.web.call(req.map(Body::new));
                Box::pin(future)
            }
            Kind::Reject(code, message) => {
                let mut response = (code, message).into_response();
                if code == StatusCode::METHOD_NOT_ALLOWED {
                    response
                        .headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static("POST"));
                }
                Box::pin(std::future::ready(Ok(response)))
            }
        }
    }
}

/// The whole HTTP service, ready for hyper.
#[derive(Clone)]
pub struct App {
    dispatch: Dispatch,
    cors: Option<tower_http::cors::Cors<Dispatch>>,
}

impl<B> Service<Request<B>> for App
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + std::fmt::Display,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<tower_http::cors::ResponseFuture<BoxFuture>, BoxFuture>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Dispatch is always ready, and so is Cors around it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // A POST without Origin is no browser's cross-origin call (gRPC clients, probes,
        // curl): it needs no CORS headers. GETs keep the layer for its `vary: origin`.
        let browser = req.method() != Method::POST || req.headers().contains_key(header::ORIGIN);
        match &mut self.cors {
            Some(cors) if browser => Either::Left(cors.call(req)),
            _ => Either::Right(self.dispatch.call(req)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(method: Method, version: Version, path: &str, ct: Option<&str>) -> Kind {
        let mut headers = HeaderMap::new();
        if let Some(ct) = ct {
            headers.insert(header::CONTENT_TYPE, ct.parse().unwrap());
        }
        classify(&method, version, &path.parse().unwrap(), &headers)
    }

    fn code(k: Kind) -> Option<StatusCode> {
        match k {
            Kind::Reject(code, _) => Some(code),
            _ => None,
        }
    }

    #[test]
    fn sorts_requests() {
        let check = "/grpc.health.v1.Health/Check";
        let h1 = Version::HTTP_11;
        let h2 = Version::HTTP_2;
        assert!(matches!(
            kind(Method::POST, h2, check, Some("application/grpc")),
            Kind::Grpc
        ));
        assert!(matches!(
            kind(Method::POST, h1, check, Some("application/grpc-web-text")),
            Kind::Grpc
        ));
        assert!(matches!(kind(Method::GET, h1, "/", None), Kind::Web));
        assert!(matches!(
            kind(Method::POST, h1, "/x.Y/Z", Some("application/grpc-web")),
            Kind::Grpc
        ));
        assert_eq!(
            code(kind(Method::POST, h1, check, Some("application/grpc"))),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            code(kind(Method::POST, h1, check, Some("text/plain"))),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        assert_eq!(
            code(kind(Method::POST, h1, check, None)),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        assert_eq!(
            code(kind(
                Method::POST,
                h1,
                check,
                Some("application/grpc-web+json")
            )),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        assert_eq!(
            code(kind(Method::GET, h1, check, Some("application/grpc-web"))),
            Some(StatusCode::METHOD_NOT_ALLOWED)
        );
    }
}
