//! The one service every caller reaches: it sorts each request into gRPC (native
//! or gRPC-Web) or plain HTTP before any of them does work.
//!
//! # Routes
//! - `POST /grpc.health.v1.Health/{Check,Watch,List}`: native gRPC over HTTP/2, and
//!   gRPC-Web binary and text over HTTP/1.1 and HTTP/2 (tonic-web).
//! - `POST /healthweb.v1.History/{Transitions,Uptime,Latency}`: every recorded
//!   change ([`crate::history`]), likewise.
//! - `POST /healthweb.v1.Statuses/WatchAll`: every service on one stream
//!   ([`crate::statuses`]), likewise.
//! - `POST /grpc.reflection.v1.ServerReflection/ServerReflectionInfo` and its
//!   `v1alpha` twin: server reflection, for grpcurl and `buf curl`.
//! - any other gRPC path: UNIMPLEMENTED, naming the method.
//! - everything else: the plain HTTP routes of [`crate::web`].
//!
//! A request with a gRPC path but no gRPC content type gets a 415 that says what
//! to send; native gRPC over HTTP/1.1 gets a 400 that says to use gRPC-Web.
//! Only the gRPC routes sit behind tonic-web, which answers any other HTTP/1.1
//! request with a bare 400.
//!
//! # The gRPC path
//! Every gRPC call, whatever its method and wire, takes one path: tonic-web's
//! layer, the metrics ([`crate::metrics`]), the call's clock ([`crate::deadline`]),
//! [`Explain`], then tonic's [`Routes`] and the generated servers. A layer added
//! there applies to every call.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    Router,
    body::Body,
    http::{
        HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version,
        header,
    },
    response::IntoResponse,
};
use futures_util::future::Either;
use healthweb_proto::{
    history::history_server::{self, HistoryServer},
    pb::health_server::{self, HealthServer},
    statuses::statuses_server::{self, StatusesServer},
    wire::{Framing, content_type},
};
use tonic::{codec::CompressionEncoding::Gzip, service::Routes};
use tonic_reflection::pb::{v1, v1alpha};
use tower::{Layer, Service};
use tower_http::cors::CorsLayer;

use crate::{
    deadline::{CallDeadline, CallDeadlineLayer},
    health::HealthService,
    history::service::HistoryService,
    metrics::{self, GrpcMetrics},
    settings::Settings,
    statuses::StatusesService,
    web::{self, WebState},
};

/// The gRPC services this server has, by their fully-qualified names.
const GRPC_SERVICES: [&str; 5] = [
    health_server::SERVICE_NAME,
    history_server::SERVICE_NAME,
    statuses_server::SERVICE_NAME,
    v1::server_reflection_server::SERVICE_NAME,
    v1alpha::server_reflection_server::SERVICE_NAME,
];

/// Builds the whole HTTP service: gRPC, gRPC-Web, and the plain routes, behind
/// `cors` when other origins may call. Watch and WatchAll streams end when the
/// registry ends them ([`crate::registry::HealthRegistry::end_streams`]).
pub fn app(settings: &Settings, state: WebState, cors: Option<CorsLayer>) -> App {
    let max = settings.max_request_message;
    let health = HealthServer::new(HealthService::new(
        state.registry.clone(),
        settings.health.clone(),
    ))
    .accept_compressed(Gzip)
    .max_decoding_message_size(max);
    let history = HistoryServer::new(
        HistoryService::new(
            state.history.clone(),
            state.registry.clone(),
            settings.health.max_service_name,
            settings.history.timeout,
        )
        .with_maintenance(state.maintenance.clone()),
    )
    .accept_compressed(Gzip)
    .max_decoding_message_size(max);
    let statuses = StatusesServer::new(StatusesService::new(state.registry.clone()))
        .accept_compressed(Gzip)
        .max_decoding_message_size(max);
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(healthweb_proto::FILE_DESCRIPTOR_SET)
    };
    let v1 = reflection()
        .build_v1()
        .expect("the embedded descriptor sets are valid")
        .accept_compressed(Gzip)
        .max_decoding_message_size(max);
    let v1alpha = reflection()
        .build_v1alpha()
        .expect("the embedded descriptor sets are valid")
        .accept_compressed(Gzip)
        .max_decoding_message_size(max);
    let grpc = Routes::new(health)
        .add_service(history)
        .add_service(statuses)
        .add_service(v1)
        .add_service(v1alpha)
        .prepare();
    let grpc = Explain(grpc);
    let grpc = CallDeadlineLayer {
        request_body_timeout: settings.request_body_timeout,
    }
    .layer(grpc);
    // Outside the deadline, so the answers it gives are counted too.
    let grpc = state.metrics.layer().layer(grpc);
    let grpc = tonic_web::GrpcWebLayer::new().layer(grpc);
    let dispatch = Dispatch {
        grpc,
        web: web::router(&settings.www, state),
    };
    let cors = cors.map(|layer| layer.layer(dispatch.clone()));
    App { dispatch, cors }
}

fn unimplemented(path: &str) -> tonic::Status {
    tonic::Status::unimplemented(format!(
        "unknown method {path}: this server has grpc.health.v1.Health (Check, Watch, List), \
         healthweb.v1.History, healthweb.v1.Statuses (WatchAll) and server reflection"
    ))
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
    let grpc_path = uri
        .path()
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .is_some_and(|(service, _)| GRPC_SERVICES.contains(&service));
    match content_type {
        Some(ct) if ct.starts_with(content_type::GRPC) => match Framing::of(ct) {
            None => unsupported(ct),
            Some(_) if method != Method::POST => not_post(method),
            Some(Framing::Grpc) if version != Version::HTTP_2 => Kind::Reject(
                StatusCode::BAD_REQUEST,
                "native gRPC (application/grpc) needs HTTP/2 (h2c with prior knowledge); \
                 over HTTP/1.1 send application/grpc-web or application/grpc-web-text\n"
                    .into(),
            ),
            Some(_) => Kind::Grpc,
        },
        _ if grpc_path => unsupported(content_type.unwrap_or("(none)")),
        _ => Kind::Web,
    }
}

fn unsupported(content_type: &str) -> Kind {
    Kind::Reject(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "unsupported content-type {content_type}: gRPC methods take {} or {} (HTTP/2), \
             {}, {}, {} or {}\n",
            content_type::GRPC,
            content_type::GRPC_PROTO,
            content_type::GRPC_WEB,
            content_type::GRPC_WEB_PROTO,
            content_type::GRPC_WEB_TEXT,
            content_type::GRPC_WEB_TEXT_PROTO,
        ),
    )
}

fn not_post(method: &Method) -> Kind {
    Kind::Reject(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("gRPC methods take POST, not {method}\n"),
    )
}

/// Puts right what tonic answers in its own words, as the innermost layer so that
/// every layer outside sees the answer the client gets: an oversize message is
/// OUT_OF_RANGE to tonic but RESOURCE_EXHAUSTED to the status-code spec ("request
/// message larger than max", as grpc-go and grpc-java answer); an unknown method
/// gets UNIMPLEMENTED with no message, where a person wants to read which method.
/// Both are trailers-only answers, so the status is a header here. The first is
/// keyed on tonic's wording, pinned by the bad-input and conformance tests.
#[derive(Clone)]
pub struct Explain<S>(S);

impl<S, B> Service<Request<B>> for Explain<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>, Error = Infallible>,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Explained<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Only an unknown method's path is kept, to name it.
        let unknown = (!metrics::is_method(request.uri().path())).then(|| request.uri().clone());
        Explained {
            answer: self.0.call(request),
            unknown,
        }
    }
}

pin_project_lite::pin_project! {
    /// [`Explain`]'s answer.
    pub struct Explained<F> {
        #[pin]
        answer: F,
        unknown: Option<Uri>,
    }
}

impl<F> Future for Explained<F>
where
    F: Future<Output = Result<Response<tonic::body::Body>, Infallible>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.answer.poll(cx))?;
        if metrics::trailers_only(&response) {
            explain(this.unknown.as_ref(), response.headers_mut());
        }
        Poll::Ready(Ok(response))
    }
}

/// Header names as constants: looked up by `&str`, a name is parsed each time.
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

fn explain(unknown: Option<&Uri>, headers: &mut HeaderMap) {
    match headers.get(&GRPC_STATUS).map(HeaderValue::as_bytes) {
        Some(b"11")
            if headers.get(&GRPC_MESSAGE).is_some_and(|m| {
                m.as_bytes()
                    .starts_with(b"Error,%20decoded%20message%20length%20too%20large")
            }) =>
        {
            headers.insert(GRPC_STATUS, HeaderValue::from_static("8"));
        }
        Some(b"12") if headers.get(&GRPC_MESSAGE).is_none_or(|m| m.is_empty()) => {
            let Some(uri) = unknown else { return };
            // Only the message: the rest of the headers stay as tonic wrote them.
            let mut explained = HeaderMap::new();
            if unimplemented(uri.path()).add_header(&mut explained).is_ok()
                && let Some(message) = explained.remove(&GRPC_MESSAGE)
            {
                headers.insert(GRPC_MESSAGE, message);
            }
        }
        _ => {}
    }
}

/// The service that sends each request to gRPC or to the plain routes.
#[derive(Clone)]
pub struct Dispatch {
    grpc: Grpc,
    web: Router,
}

/// The gRPC path, outermost layer first.
pub type Grpc = tonic_web::GrpcWebService<GrpcMetrics<CallDeadline<Explain<Routes>>>>;

/// Every answer's body: tonic's, as the gRPC path makes it (the plain routes' are
/// put in one, they are the rarer).
pub type AnswerBody = tonic::body::Body;

/// A boxed answer: the plain routes' and the refusals'.
pub type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<AnswerBody>, Infallible>> + Send>>;

/// A gRPC call's answer, unboxed: the layers' own futures, one inside the other.
pub type GrpcFuture<B> = <Grpc as Service<Request<B>>>::Future;

impl<B> Service<Request<B>> for Dispatch
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + std::fmt::Display,
{
    type Response = Response<AnswerBody>;
    type Error = Infallible;
    type Future = Either<GrpcFuture<B>, BoxFuture>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Both inner services are always ready: tonic's routes and axum's router.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match classify(req.method(), req.version(), req.uri(), req.headers()) {
            Kind::Grpc => Either::Left(self.grpc.call(req)),
            Kind::Web => {
                let answer = self.web.call(req.map(Body::new));
                Either::Right(Box::pin(
                    async move { Ok(answer.await?.map(AnswerBody::new)) },
                ))
            }
            Kind::Reject(code, message) => {
                let mut response = (code, message).into_response();
                if code == StatusCode::METHOD_NOT_ALLOWED {
                    response
                        .headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static("POST"));
                }
                Either::Right(Box::pin(std::future::ready(Ok(
                    response.map(AnswerBody::new)
                ))))
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

/// [`App`]'s answer to a request with a body of type `B`.
pub type AppFuture<B> = Either<
    tower_http::cors::ResponseFuture<<Dispatch as Service<Request<B>>>::Future>,
    <Dispatch as Service<Request<B>>>::Future,
>;

impl<B> Service<Request<B>> for App
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + std::fmt::Display,
{
    type Response = Response<AnswerBody>;
    type Error = Infallible;
    type Future = AppFuture<B>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Dispatch is always ready, and so is Cors around it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // A POST without Origin is no browser's cross-origin call (gRPC clients, probes,
        // curl): it needs no CORS headers. GETs keep the layer for its `vary: origin`.
        match &mut self.cors {
            Some(cors)
                if req.method() != Method::POST || req.headers().contains_key(header::ORIGIN) =>
            {
                Either::Left(cors.call(req))
            }
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
