//! `grpc.health.v1.Health`, exactly as the gRPC health-checking spec says.
//!
//! - Check: a registered service answers OK with its status; an unknown one fails
//!   with NOT_FOUND naming it.
//! - Watch: the current status at once, then one message per change and never a
//!   repeat; an unknown service is SERVICE_UNKNOWN and the stream stays open.
//!   The stream ends with UNAVAILABLE when the server drains (the registry closes
//!   its channels, [`HealthRegistry::end_streams`]); the caller's
//!   `grpc-timeout` ends it with DEADLINE_EXCEEDED ([`crate::deadline`] keeps
//!   every call's clock).
//! - List: every registered service; RESOURCE_EXHAUSTED past the list limit.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures_util::Stream;
use healthweb_proto::pb::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
    health_check_response::ServingStatus, health_server::Health,
};
use tonic::{Request, Response, Status};

use crate::registry::{HealthRegistry, Release};

/// The limits the Health service enforces on its callers.
#[derive(Debug, Clone)]
pub struct HealthLimits {
    /// Longest accepted service name, in bytes.
    pub max_service_name: usize,
    /// Most services List returns before it answers RESOURCE_EXHAUSTED (grpc-go: 100).
    pub max_list: usize,
    /// How many changes the registry keeps for WatchAll streams that resume
    /// ([`crate::statuses`]); a stream further behind gets a new snapshot.
    pub watch_all_backlog: usize,
}

impl Default for HealthLimits {
    fn default() -> Self {
        Self {
            max_service_name: 512,
            max_list: 100,
            watch_all_backlog: crate::registry::DEFAULT_BACKLOG,
        }
    }
}

/// The Health service over a [`HealthRegistry`].
#[derive(Debug, Clone)]
pub struct HealthService {
    registry: HealthRegistry,
    limits: HealthLimits,
}

impl HealthService {
    /// Serves `registry`; Watch streams end when it ends them.
    pub fn new(registry: HealthRegistry, limits: HealthLimits) -> Self {
        Self { registry, limits }
    }

    fn service_name<'a>(&self, request: &'a HealthCheckRequest) -> Result<&'a str, Status> {
        let name = request.service.as_str();
        if name.len() > self.limits.max_service_name {
            return Err(Status::invalid_argument(format!(
                "service name is {} bytes long; the limit is {} (--max-service-name)",
                name.len(),
                self.limits.max_service_name
            )));
        }
        Ok(name)
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

/// A Watch answer: the current status at once, then one message per change and
/// never a repeat; UNAVAILABLE once the registry closes the channel at the drain
/// (a change already there goes out first). One channel is all it waits on.
pub struct WatchStream {
    // Dropped before `release`, which counts the receivers that are left.
    changes: tokio_stream::wrappers::WatchStream<ServingStatus>,
    last: Option<ServingStatus>,
    done: bool,
    _release: Release,
}

impl Stream for WatchStream {
    type Item = Result<HealthCheckResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match std::task::ready!(Pin::new(&mut this.changes).poll_next(cx)) {
                // The channel may flip and flip back between two polls; the spec
                // wants a message per change, so an unchanged status is not one.
                Some(status) if this.last == Some(status) => continue,
                Some(status) => {
                    this.last = Some(status);
                    return Poll::Ready(Some(Ok(response(status))));
                }
                None => {
                    this.done = true;
                    return Poll::Ready(Some(Err(shutting_down())));
                }
            }
        }
    }
}

/// How Watch and WatchAll streams end when the server drains: UNAVAILABLE, so that
/// clients reconnect to another instance.
pub(crate) fn shutting_down() -> Status {
    Status::unavailable("the server is shutting down; reconnect to another instance")
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let name = self.service_name(request.get_ref())?;
        match self.registry.check(name) {
            Some(status) => Ok(Response::new(response(status))),
            None => Err(Status::not_found(format!("unknown service {name:?}"))),
        }
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let name = self.service_name(request.get_ref())?;
        let (receiver, release) = self.registry.watch(name).into_parts();
        Ok(Response::new(WatchStream {
            changes: tokio_stream::wrappers::WatchStream::new(receiver),
            last: None,
            done: false,
            _release: release,
        }))
    }

    async fn list(
        &self,
        _request: Request<HealthListRequest>,
    ) -> Result<Response<HealthListResponse>, Status> {
        let services = self.registry.list();
        if services.len() > self.limits.max_list {
            return Err(Status::resource_exhausted(format!(
                "{} services exceed the List limit of {}; Check them one by one",
                services.len(),
                self.limits.max_list
            )));
        }
        let statuses = services
            .into_iter()
            .map(|(name, status)| (name, response(status)))
            .collect();
        Ok(Response::new(HealthListResponse { statuses }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use futures_util::StreamExt;

    fn service(registry: &HealthRegistry) -> HealthService {
        HealthService::new(registry.clone(), HealthLimits::default())
    }

    fn req(name: &str) -> Request<HealthCheckRequest> {
        Request::new(HealthCheckRequest {
            service: name.into(),
        })
    }

    async fn next(stream: &mut WatchStream) -> ServingStatus {
        let msg = stream.next().await.unwrap().unwrap();
        ServingStatus::try_from(msg.status).unwrap()
    }

    /// A drained Watch's last words: NOT_SERVING, then UNAVAILABLE, then nothing.
    async fn ends_not_serving_then_unavailable(mut stream: WatchStream) {
        assert_eq!(next(&mut stream).await, ServingStatus::NotServing);
        let end = stream.next().await.unwrap().unwrap_err();
        assert_eq!(end.code(), tonic::Code::Unavailable);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn check_unknown_is_not_found_naming_it() {
        let registry = HealthRegistry::new();
        let svc = service(&registry);
        let err = svc.check(req("nope")).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
        assert!(err.message().contains("\"nope\""), "{}", err.message());
    }

    #[tokio::test]
    async fn watch_sends_only_changes() {
        let registry = HealthRegistry::new();
        registry.set("a", ServingStatus::Serving).unwrap();
        let svc = service(&registry);
        let mut stream = svc.watch(req("a")).await.unwrap().into_inner();
        assert_eq!(next(&mut stream).await, ServingStatus::Serving);
        registry.set("a", ServingStatus::NotServing).unwrap();
        registry.set("a", ServingStatus::Serving).unwrap();
        registry.set("a", ServingStatus::Serving).unwrap();
        registry.set("a", ServingStatus::NotServing).unwrap();
        // Whatever intermediate states the watcher skipped, it never sees a repeat.
        let got = next(&mut stream).await;
        assert_eq!(got, ServingStatus::NotServing);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), stream.next())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn drain_ends_watch_after_the_last_status() {
        let registry = HealthRegistry::new();
        let svc = service(&registry);
        let mut stream = svc.watch(req("")).await.unwrap().into_inner();
        assert_eq!(next(&mut stream).await, ServingStatus::Serving);
        registry.shutdown();
        registry.end_streams();
        ends_not_serving_then_unavailable(stream).await;
    }

    #[tokio::test]
    async fn a_watch_opened_during_the_drain_gets_its_status_then_unavailable() {
        let registry = HealthRegistry::new();
        let svc = service(&registry);
        registry.shutdown();
        registry.end_streams();
        ends_not_serving_then_unavailable(svc.watch(req("")).await.unwrap().into_inner()).await;
    }

    #[tokio::test]
    async fn list_is_capped() {
        let registry = HealthRegistry::new();
        for i in 0..100 {
            registry
                .set(&format!("s{i}"), ServingStatus::Serving)
                .unwrap();
        }
        let svc = service(&registry);
        let err = svc
            .list(Request::new(HealthListRequest {}))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        registry.remove("s0").unwrap();
        let list = svc.list(Request::new(HealthListRequest {})).await.unwrap();
        assert_eq!(list.into_inner().statuses.len(), 100);
    }
}
