//! Every gRPC call's clock, started the moment its headers arrive, for every RPC
//! and every protocol (it sits inside tonic-web, so gRPC-Web binary and text get
//! the same answers in their own framing):
//!
//! - `grpc-timeout` bounds the whole call: an answer that has not begun by then
//!   is DEADLINE_EXCEEDED, and a streamed answer (Watch) ends with
//!   DEADLINE_EXCEEDED in its trailers;
//! - without one, the request body must arrive within the request-body timeout,
//!   or the call ends with DEADLINE_EXCEEDED, saying so (a stalled body never
//!   holds a call open).
//!
//! Timers are only set when they can matter: a request body that is already
//! whole, or an answer that is already written, costs no timer.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use healthweb_proto::wire;
use http::{HeaderMap, Request, Response};
use http_body::Frame;
use tokio::time::{Instant, Sleep};
use tonic::Status;
use tower::{Layer, Service};

/// Adds [`CallDeadline`] to a gRPC service.
#[derive(Debug, Clone, Copy)]
pub struct CallDeadlineLayer {
    /// How long a request body may take when the call has no `grpc-timeout`.
    pub request_body_timeout: Duration,
}

impl<S> Layer<S> for CallDeadlineLayer {
    type Service = CallDeadline<S>;

    fn layer(&self, inner: S) -> CallDeadline<S> {
        CallDeadline {
            inner,
            request_body_timeout: self.request_body_timeout,
        }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct CallDeadline<S> {
    inner: S,
    request_body_timeout: Duration,
}

impl<S, B, ResBody> Service<Request<B>> for CallDeadline<S>
where
    S: Service<Request<Timed<B>>, Response = Response<ResBody>, Error = Infallible>,
    ResBody: Default,
{
    type Response = Response<Timed<ResBody>>;
    type Error = Infallible;
    type Future = TimedAnswer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let now = Instant::now();
        let deadline = grpc_timeout(request.headers()).map(|timeout| now + timeout);
        let body_stop = match deadline {
            Some(at) => Stop::Deadline(at),
            None => Stop::BodyStalled(now + self.request_body_timeout, self.request_body_timeout),
        };
        let request = request.map(|body| Timed::new(body, Some(body_stop), true));
        TimedAnswer {
            answer: self.inner.call(request),
            deadline,
            sleep: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// [`CallDeadline`]'s answer: DEADLINE_EXCEEDED if it has not begun by the
    /// deadline, else the answer with its body on the same clock. The timer is made
    /// only if the answer has to be waited for.
    pub struct TimedAnswer<F> {
        #[pin]
        answer: F,
        deadline: Option<Instant>,
        sleep: Option<Pin<Box<Sleep>>>,
    }
}

impl<F, B> Future for TimedAnswer<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: Default,
{
    type Output = Result<Response<Timed<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let stop = this.deadline.map(Stop::Deadline);
        if let Poll::Ready(response) = this.answer.poll(cx) {
            return Poll::Ready(Ok(response?.map(|body| Timed::new(body, stop, false))));
        }
        let Some(at) = *this.deadline else {
            return Poll::Pending;
        };
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        std::task::ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Ok(Stop::Deadline(at).status().into_http()))
    }
}

/// When a [`Timed`] body gives up, and why.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// The caller's `grpc-timeout`.
    Deadline(Instant),
    /// No `grpc-timeout`, and the request body took longer than the limit.
    BodyStalled(Instant, Duration),
}

impl Stop {
    fn at(self) -> Instant {
        match self {
            Self::Deadline(at) | Self::BodyStalled(at, _) => at,
        }
    }

    /// Made only when the clock runs out: most calls never pay for the message.
    fn status(self) -> Status {
        match self {
            Self::Deadline(_) => {
                Status::deadline_exceeded("the call reached its deadline (grpc-timeout)")
            }
            // Not CANCELLED: tonic takes a request body that fails with CANCELLED
            // for a client hanging up, and answers INTERNAL.
            Self::BodyStalled(_, limit) => Status::deadline_exceeded(format!(
                "the request body did not arrive within {} (--request-body-timeout); \
                 send the whole message, or a grpc-timeout",
                humantime::format_duration(limit)
            )),
        }
    }
}

pin_project_lite::pin_project! {
    /// A body on a clock. As a request body it fails with the status at the
    /// deadline (tonic answers with it); as an answer body it ends there with the
    /// status in its trailers. Without a stop it is the body as it is. The timer is
    /// made only if the body has to wait.
    pub struct Timed<B> {
        #[pin]
        inner: B,
        stop: Option<Stop>,
        sleep: Option<Pin<Box<Sleep>>>,
        done: bool,
        request: bool,
    }
}

impl<B> Timed<B> {
    fn new(inner: B, stop: Option<Stop>, request: bool) -> Self {
        Self {
            inner,
            stop,
            sleep: None,
            done: false,
            request,
        }
    }
}

/// An empty answer body, for an answer made here (DEADLINE_EXCEEDED).
impl<B: Default> Default for Timed<B> {
    fn default() -> Self {
        Self::new(B::default(), None, false)
    }
}

impl<B> http_body::Body for Timed<B>
where
    B: http_body::Body<Data = Bytes, Error = Status>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            if frame
                .as_ref()
                .is_none_or(|f| f.as_ref().is_ok_and(Frame::is_trailers))
            {
                *this.done = true;
            }
            return Poll::Ready(frame);
        }
        let Some(stop) = *this.stop else {
            return Poll::Pending;
        };
        let stop_at = stop.at();
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(stop_at)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        *this.done = true;
        let status = stop.status();
        Poll::Ready(Some(if *this.request {
            Err(status)
        } else {
            Ok(Frame::trailers(trailers(&status)))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }
}

fn trailers(status: &Status) -> HeaderMap {
    let mut headers = HeaderMap::new();
    // tonic's own encoding of grpc-status and grpc-message; it fails only on
    // details that do not fit a header, which these statuses never have.
    let _ = status.add_header(&mut headers);
    headers
}

/// The caller's deadline from `grpc-timeout`, if it sent a valid one.
pub fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    const GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static("grpc-timeout");
    wire::parse_timeout(headers.get(&GRPC_TIMEOUT)?.to_str().ok()?)
}
