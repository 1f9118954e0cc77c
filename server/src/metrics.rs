//! `GET /metrics`, in the OpenMetrics text format (`prometheus-client`), with
//! the names the ecosystem already spells:
//!
//! - `healthweb_service_status{service, status}`: 1 for the current status, 0 for
//!   the others (kube-state-metrics' one-series-per-state gauge);
//! - `healthweb_status_transitions_total{service}`, while the service is registered;
//! - `healthweb_watch_streams`: Watch streams open now; `healthweb_watch_all_streams`:
//!   WatchAll streams (each follows every service);
//! - `healthweb_upstream_probe_seconds`: the monitor's probe latency, every upstream's
//!   in one histogram (each upstream's own is in History's Latency and `/upstreams`);
//! - go-grpc-prometheus': `grpc_server_started_total`, `grpc_server_handled_total`
//!   (with `grpc_code` spelled as Go spells it) and `grpc_server_handling_seconds`,
//!   each by `grpc_type`, `grpc_service` and `grpc_method`, for every method this
//!   server has (an unknown path is no method, and adds no series).
//!
//! The gRPC counters sit on the hot path, so each method's series are looked up
//! once, when the server starts.
//!
//! # Bounded
//! A fleet of 10,000 services costs 4 series a service (3 statuses and the
//! transitions counter), and nothing more per upstream: every other family has a
//! fixed set of label values. A removed service's series go with it.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use healthweb_proto::{pb::health_check_response::ServingStatus, wire::path};
use http::{HeaderMap, Request, Response};
use http_body::Frame;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tower::{Layer, Service};

use crate::{
    monitor::ProbeObserver,
    registry::{HealthRegistry, Observer, Reason},
};

/// Every gRPC method served: path, service, method, go-grpc-prometheus type.
const METHODS: [(&str, &str, &str, &str); 9] = [
    (path::CHECK, "grpc.health.v1.Health", "Check", "unary"),
    (
        path::WATCH,
        "grpc.health.v1.Health",
        "Watch",
        "server_stream",
    ),
    (path::LIST, "grpc.health.v1.Health", "List", "unary"),
    (
        path::TRANSITIONS,
        "healthweb.v1.History",
        "Transitions",
        "unary",
    ),
    (path::UPTIME, "healthweb.v1.History", "Uptime", "unary"),
    (path::LATENCY, "healthweb.v1.History", "Latency", "unary"),
    (
        path::WATCH_ALL,
        "healthweb.v1.Statuses",
        "WatchAll",
        "server_stream",
    ),
    (
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1.ServerReflection",
        "ServerReflectionInfo",
        "bidi_stream",
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection",
        "ServerReflectionInfo",
        "bidi_stream",
    ),
];

/// Whether `path` is a method this server has.
pub(crate) fn is_method(path: &str) -> bool {
    METHODS.iter().any(|m| m.0 == path)
}

/// gRPC's codes as Go spells them, which go-grpc-prometheus's dashboards expect.
const GO_CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Rpc {
    grpc_type: &'static str,
    grpc_service: &'static str,
    grpc_method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Handled {
    grpc_type: &'static str,
    grpc_service: &'static str,
    grpc_method: &'static str,
    grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    service: String,
    status: &'static str,
}

/// One method's series, looked up once.
#[derive(Debug)]
struct MethodSeries {
    started: Counter,
    handling: Histogram,
    /// By code, in `GO_CODES` order.
    handled: Vec<Counter>,
}

/// Every metric; cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    methods: Vec<MethodSeries>,
    transitions: Family<ServiceLabel, Counter>,
    probes: Histogram,
    scrape: Scrape,
}

/// The per-scrape part: statuses and open streams, read from the registry.
#[derive(Debug, Clone, Default)]
struct Scrape(Arc<OnceLock<HealthRegistry>>);

fn seconds_buckets() -> Histogram {
    // go-grpc-prometheus' (Prometheus' default) buckets.
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every series, registered; [`Metrics::watch`] then names the registry to read.
    pub fn new() -> Self {
        Self::with_collectors(Vec::new())
    }

    /// [`Metrics::new`], and `collectors` (the history store's health) read at
    /// each scrape.
    pub fn with_collectors(collectors: Vec<Box<dyn Collector>>) -> Self {
        let mut registry = Registry::default();
        for collector in collectors {
            registry.register_collector(collector);
        }
        let started = Family::<Rpc, Counter>::default();
        let handled = Family::<Handled, Counter>::default();
        let handling = Family::<Rpc, Histogram, fn() -> Histogram>::new_with_constructor(
            seconds_buckets as fn() -> Histogram,
        );
        let methods = METHODS
            .iter()
            .map(|&(_, grpc_service, grpc_method, grpc_type)| {
                let rpc = Rpc {
                    grpc_type,
                    grpc_service,
                    grpc_method,
                };
                MethodSeries {
                    started: started.get_or_create_owned(&rpc),
                    handling: handling.get_or_create_owned(&rpc),
                    handled: GO_CODES
                        .iter()
                        .map(|&grpc_code| {
                            handled.get_or_create_owned(&Handled {
                                grpc_type,
                                grpc_service,
                                grpc_method,
                                grpc_code,
                            })
                        })
                        .collect(),
                }
            })
            .collect();
        registry.register("grpc_server_started", "RPCs started on the server", started);
        registry.register(
            "grpc_server_handled",
            "RPCs completed on the server, whatever their code",
            handled,
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Time from an RPC's start to its end on the server",
            handling,
        );
        let transitions = Family::<ServiceLabel, Counter>::default();
        registry.register(
            "healthweb_status_transitions",
            "Status changes of each service",
            transitions.clone(),
        );
        let probes = seconds_buckets();
        registry.register(
            "healthweb_upstream_probe_seconds",
            "How long the upstream monitor's probes take, every upstream's together",
            probes.clone(),
        );
        let scrape = Scrape::default();
        registry.register_collector(Box::new(scrape.clone()));
        Self {
            inner: Arc::new(Inner {
                registry,
                methods,
                transitions,
                probes,
                scrape,
            }),
        }
    }

    /// Reads statuses and open streams from `registry` at each scrape.
    pub fn watch(&self, registry: HealthRegistry) {
        let _ = self.inner.scrape.0.set(registry);
    }

    /// The gRPC layer that counts every call of a known method.
    pub fn layer(&self) -> GrpcMetricsLayer {
        GrpcMetricsLayer(self.clone())
    }

    /// The whole exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.inner.registry);
        text
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(registry) = self.0.get() else {
            return Ok(());
        };
        let statuses = Family::<StatusLabels, Gauge>::default();
        for (service, status) in registry.list() {
            for word in ["SERVING", "NOT_SERVING", "UNKNOWN"] {
                let value = i64::from(status.as_str_name() == word);
                let labels = StatusLabels {
                    service: service.clone(),
                    status: word,
                };
                statuses.get_or_create(&labels).set(value);
            }
        }
        let described = encoder.encode_descriptor(
            "healthweb_service_status",
            "1 for each service's current status, 0 for the others",
            None,
            statuses.metric_type(),
        )?;
        statuses.encode(described)?;
        let streams = Gauge::<i64>::default();
        streams.set(registry.watchers().values().sum::<usize>() as i64);
        let described = encoder.encode_descriptor(
            "healthweb_watch_streams",
            "Watch streams open now",
            None,
            streams.metric_type(),
        )?;
        streams.encode(described)?;
        let followers = Gauge::<i64>::default();
        followers.set(registry.followers() as i64);
        let described = encoder.encode_descriptor(
            "healthweb_watch_all_streams",
            "WatchAll streams (each following every service) open now",
            None,
            followers.metric_type(),
        )?;
        followers.encode(described)
    }
}

impl Observer for Metrics {
    fn changed(&self, service: &str, _: ServingStatus, to: ServingStatus, _: Reason<'_>) {
        let label = ServiceLabel {
            service: service.to_owned(),
        };
        // Removed: its series goes, so that names that come and go add up to nothing.
        if to == ServingStatus::ServiceUnknown {
            self.inner.transitions.remove(&label);
        } else {
            self.inner.transitions.get_or_create(&label).inc();
        }
    }
}

impl ProbeObserver for Metrics {
    fn probed(&self, _: &str, latency: Duration) {
        self.inner.probes.observe(latency.as_secs_f64());
    }
}

/// Adds [`GrpcMetrics`] to the gRPC routes.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer(Metrics);

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        GrpcMetrics {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// Counts each call of a known method: started now, handled with its code when
/// its answer ends (trailers-only, or in the trailers), timed in between.
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B, ResBody> Service<Request<B>> for GrpcMetrics<S>
where
    S: Service<Request<B>, Response = Response<ResBody>, Error = Infallible>,
    ResBody: http_body::Body,
{
    type Response = Response<Counted<ResBody>>;
    type Error = Infallible;
    type Future = CountedAnswer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path();
        let started = METHODS
            .iter()
            .position(|m| m.0 == path)
            .map(|method| Started::now(&self.metrics, method));
        CountedAnswer {
            answer: self.inner.call(request),
            started,
        }
    }
}

pin_project_lite::pin_project! {
    /// [`GrpcMetrics`]' answer: a trailers-only status is counted as it arrives,
    /// any other when its body ends ([`Counted`]).
    pub struct CountedAnswer<F> {
        #[pin]
        answer: F,
        started: Option<Started>,
    }
}

impl<F, B> Future for CountedAnswer<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: http_body::Body,
{
    type Output = Result<Response<Counted<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.answer.poll(cx))?;
        let mut started = this.started.take();
        if let Some(started) = &mut started
            && trailers_only(&response)
            && let Some(code) = code_of(response.headers())
        {
            started.handled(code);
        }
        Poll::Ready(Ok(response.map(|body| Counted { body, started })))
    }
}

const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// Whether `response` is trailers-only, the one kind of answer with its status in its
/// headers: its body is already at its end (tonic's `Status::into_http` and the deadline
/// layer's own answers carry an empty one, and that is what makes hyper send the status
/// as one HEADERS frame with END_STREAM). Any other answer's status comes in its
/// trailers, so its headers need not be searched.
pub(crate) fn trailers_only<B: http_body::Body>(response: &Response<B>) -> bool {
    response.body().is_end_stream()
}

fn code_of(headers: &HeaderMap) -> Option<usize> {
    let code: usize = headers.get(&GRPC_STATUS)?.to_str().ok()?.parse().ok()?;
    Some(code.min(GO_CODES.len() - 1))
}

/// One call in flight; counted once, when it ends (CANCELLED if it is dropped
/// before).
#[derive(Debug)]
struct Started {
    metrics: Metrics,
    method: usize,
    started: Instant,
    done: bool,
}

impl Started {
    /// A call of `METHODS[method]` starts now.
    fn now(metrics: &Metrics, method: usize) -> Self {
        metrics.inner.methods[method].started.inc();
        Self {
            metrics: metrics.clone(),
            method,
            started: Instant::now(),
            done: false,
        }
    }

    fn handled(&mut self, code: usize) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let series = &self.metrics.inner.methods[self.method];
        series.handled[code].inc();
        series
            .handling
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // Ended without a status: the client went away.
        self.handled(1);
    }
}

pin_project_lite::pin_project! {
    /// An answer's body, watched for the grpc-status in its trailers.
    pub struct Counted<B> {
        #[pin]
        body: B,
        started: Option<Started>,
    }
}

impl<B: http_body::Body<Data = Bytes>> http_body::Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.body.poll_frame(cx));
        if let Some(started) = this.started {
            match &frame {
                Some(Ok(frame)) => {
                    if let Some(code) = frame.trailers_ref().and_then(code_of) {
                        started.handled(code);
                    }
                }
                // The stream broke: the status never came.
                Some(Err(_)) => started.handled(2),
                None => {}
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
