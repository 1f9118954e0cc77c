//! Check and Watch in one step: the calls every probe of every pod makes, and
//! the one whose every watcher must hear a change at once.
//!
//! For a well-formed call (one uncompressed message, within the size and name
//! limits), every message is one of a few frames encoded once per status, for
//! native gRPC, gRPC-Web and gRPC-Web text alike, and shared by every answer and
//! every watcher: no codec, no routing, no per-call buffers. A Check of a registered
//! service is answered whole; a Watch streams from the service's channel, ends at
//! its `grpc-timeout` with DEADLINE_EXCEEDED and at the drain with UNAVAILABLE, as
//! [`crate::health`] does. Anything else (an unknown service's Check, a malformed
//! or compressed message, a `grpc-encoding`, a body too large) goes on to the
//! general path with the bytes already read put back in front of the rest, so
//! every answer there stays exactly what tonic and tonic-web give.

use std::{
    pin::Pin,
    sync::LazyLock,
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use healthweb_proto::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, header, request::Parts};
use http_body::Frame;
use prost::Message;
use tokio::{
    sync::watch::{self, error::RecvError},
    time::{Instant, Sleep},
};
use tokio_util::sync::{CancellationToken, ReusableBoxFuture};

use crate::{
    deadline,
    metrics::{Call, Metrics},
    registry::{HealthRegistry, Release},
};

/// The Check path.
pub const CHECK: &str = "/grpc.health.v1.Health/Check";
/// The Watch path.
pub const WATCH: &str = "/grpc.health.v1.Health/Watch";

/// Header names as constants: looked up by `&str`, a name is parsed each time.
const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// How the call came, and so how its answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// `application/grpc`, over HTTP/2.
    Native,
    /// gRPC-Web.
    Web {
        /// The body is base64 (`application/grpc-web-text`).
        text_in: bool,
        /// The answer should be base64: `Accept` says so (as tonic-web decides).
        text_out: bool,
    },
}

impl Wire {
    /// The wire of a call with these headers, if this path can take it.
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        if headers.contains_key(&GRPC_ENCODING) {
            return None;
        }
        let text = |name| {
            matches!(
                headers.get(name).and_then(|v| v.to_str().ok()),
                Some("application/grpc-web-text" | "application/grpc-web-text+proto")
            )
        };
        match headers.get(header::CONTENT_TYPE)?.as_bytes() {
            b"application/grpc" | b"application/grpc+proto" => Some(Self::Native),
            b"application/grpc-web"
            | b"application/grpc-web+proto"
            | b"application/grpc-web-text"
            | b"application/grpc-web-text+proto" => Some(Self::Web {
                text_in: text(header::CONTENT_TYPE),
                text_out: text(header::ACCEPT),
            }),
            _ => None,
        }
    }
}

/// What the fast path needs to answer.
#[derive(Debug, Clone)]
pub struct FastCheck {
    /// The statuses.
    pub registry: HealthRegistry,
    /// The counters a Check moves.
    pub metrics: Metrics,
    /// Largest accepted request message.
    pub max_message: usize,
    /// Longest accepted service name.
    pub max_service_name: usize,
    /// How long the body may take without a `grpc-timeout`.
    pub request_body_timeout: Duration,
    /// Cancelled when the server drains: open Watch streams end then.
    pub draining: CancellationToken,
}

/// The request, given back whole for the general path.
pub type Passed<B> = Request<Prefixed<B>>;

/// What reading a call's message came to.
enum Read<B> {
    /// A service name, with what is needed to give the call back.
    Service(Parts, Bytes, B, String),
    /// The body did not come in time: this is the answer.
    Stalled(tonic::Status),
    /// Not a call this path takes.
    Passed(Passed<B>),
}

impl FastCheck {
    /// Answers a Check, or gives it back (with what was read of its body in front).
    pub async fn check<B>(
        &self,
        request: Request<B>,
        wire: Wire,
    ) -> Result<Response<Body>, Passed<B>>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
    {
        let started = std::time::Instant::now();
        match self.read(request, wire).await {
            Read::Stalled(status) => {
                self.metrics
                    .check_answered(started.elapsed(), status.code());
                Ok(refusal(status, wire))
            }
            Read::Passed(passed) => Err(passed),
            Read::Service(parts, read, body, service) => match self.registry.check(&service) {
                Some(status) => {
                    self.metrics
                        .check_answered(started.elapsed(), tonic::Code::Ok);
                    Ok(answer(status, wire))
                }
                None => Err(give_back(parts, read, body)),
            },
        }
    }

    /// Opens a Watch, or gives the call back.
    pub async fn watch<B>(
        &self,
        request: Request<B>,
        wire: Wire,
    ) -> Result<Response<Body>, Passed<B>>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
    {
        let started = Instant::now();
        let deadline = deadline::grpc_timeout(request.headers()).map(|t| started + t);
        let service = match self.read(request, wire).await {
            Read::Stalled(status) => {
                self.metrics.watch_started().ended(status.code());
                return Ok(refusal(status, wire));
            }
            // Counted by the general path.
            Read::Passed(passed) => return Err(passed),
            Read::Service(.., service) => service,
        };
        let call = self.metrics.watch_started();
        let (mut rx, release) = self.registry.watch(&service).into_parts();
        let first = *rx.borrow_and_update();
        let body = Watching {
            first: Some(first),
            changed: ReusableBoxFuture::new(changed(rx)),
            _release: release,
            last: None,
            wire,
            draining: self.draining.clone(),
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            ending: None,
            call,
        };
        Ok(with_type(Response::new(Body::new(body)), wire))
    }

    /// Reads the call's one message and the service it names, within the call's
    /// deadline (or the request-body timeout).
    async fn read<B>(&self, request: Request<B>, wire: Wire) -> Read<B>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
    {
        let now = Instant::now();
        let (parts, mut body) = request.into_parts();
        let stop = match deadline::grpc_timeout(&parts.headers) {
            Some(timeout) => deadline::Stop::Deadline(now + timeout),
            None => deadline::Stop::BodyStalled(
                now + self.request_body_timeout,
                self.request_body_timeout,
            ),
        };
        // The whole message, base64 or not, is at most this long.
        let limit = (self.max_message + 5) * 4 / 3 + 8;
        let mut read = Bytes::new();
        // A timer only if the body keeps us waiting: it has usually come whole.
        let mut timer: Option<Pin<Box<Sleep>>> = None;
        loop {
            let frame = std::future::poll_fn(|cx| {
                if let Poll::Ready(frame) = Pin::new(&mut body).poll_frame(cx) {
                    return Poll::Ready(Some(frame));
                }
                let timer =
                    timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(stop.at())));
                timer.as_mut().poll(cx).map(|()| None)
            })
            .await;
            match frame {
                None => return Read::Stalled(stop.status()),
                Some(None) => break,
                Some(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        read = if read.is_empty() {
                            data
                        } else {
                            [&read[..], &data[..]].concat().into()
                        };
                    }
                    if read.len() > limit {
                        return Read::Passed(give_back(parts, read, body));
                    }
                }
                Some(Some(Err(_))) => return Read::Passed(give_back(parts, read, body)),
            }
        }
        let service = match wire {
            Wire::Web { text_in: true, .. } => decode_base64(&read),
            _ => Some(read.clone()),
        }
        .and_then(|message| self.service(&message));
        match service {
            Some(service) => Read::Service(parts, read, body, service),
            None => Read::Passed(give_back(parts, read, body)),
        }
    }

    /// The service a framed request names, if this path takes it.
    fn service(&self, framed: &[u8]) -> Option<String> {
        let (&[0, a, b, c, d], message) = framed.split_first_chunk::<5>()? else {
            return None;
        };
        let length = u32::from_be_bytes([a, b, c, d]) as usize;
        if length != message.len() || length > self.max_message {
            return None;
        }
        let request = HealthCheckRequest::decode(message).ok()?;
        (request.service.len() <= self.max_service_name).then_some(request.service)
    }
}

/// Decodes gRPC-Web text: base64 chunks, each padded on its own (a chunk ends
/// after its run of `=`).
fn decode_base64(text: &[u8]) -> Option<Bytes> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut rest = text;
    while !rest.is_empty() {
        let end = match rest.iter().position(|&b| b == b'=') {
            Some(pad) => pad + rest[pad..].iter().take_while(|&&b| b == b'=').count(),
            None => rest.len(),
        };
        engine.decode_vec(&rest[..end], &mut out).ok()?;
        rest = &rest[end..];
    }
    Some(out.into())
}

fn give_back<B>(parts: Parts, read: Bytes, rest: B) -> Passed<B> {
    Request::from_parts(
        parts,
        Prefixed {
            prefix: Some(read).filter(|b| !b.is_empty()),
            rest,
        },
    )
}

/// A refusal as the general path gives it: trailers only, in the call's wire.
fn refusal(status: tonic::Status, wire: Wire) -> Response<Body> {
    let mut response = status.into_http::<Body>();
    if let Wire::Web { text_out, .. } = wire {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, web_type(text_out));
    }
    response
}

fn web_type(text: bool) -> HeaderValue {
    HeaderValue::from_static(if text {
        "application/grpc-web-text+proto"
    } else {
        "application/grpc-web+proto"
    })
}

/// The message frame of each status: `08 NN`, or nothing for UNKNOWN (0).
fn message(status: ServingStatus) -> &'static [u8] {
    match status {
        ServingStatus::Unknown => b"\0\0\0\0\0",
        ServingStatus::Serving => b"\0\0\0\0\x02\x08\x01",
        ServingStatus::NotServing => b"\0\0\0\0\x02\x08\x02",
        ServingStatus::ServiceUnknown => b"\0\0\0\0\x02\x08\x03",
    }
}

/// gRPC-Web's trailer frame for OK, as tonic-web writes it.
const OK_TRAILERS: &[u8] = b"\x80\0\0\0\x0fgrpc-status:0\r\n";

/// The answer, whole: a message and an OK in the call's wire.
fn answer(status: ServingStatus, wire: Wire) -> Response<Body> {
    let body = match wire {
        Wire::Native => Body::new(Answer {
            message: Some(message_frame(status, false)),
            trailers: true,
        }),
        Wire::Web { text_out, .. } => {
            Body::from(WEB_ANSWERS[usize::from(text_out)][status as usize].clone())
        }
    };
    with_type(Response::new(body), wire)
}

/// Sets the content type the wire's answers carry.
fn with_type(mut response: Response<Body>, wire: Wire) -> Response<Body> {
    let value = match wire {
        Wire::Native => HeaderValue::from_static("application/grpc"),
        Wire::Web { text_out, .. } => web_type(text_out),
    };
    response.headers_mut().insert(header::CONTENT_TYPE, value);
    response
}

/// One status's message frame, in binary or base64, encoded once.
fn message_frame(status: ServingStatus, text: bool) -> Bytes {
    static FRAMES: LazyLock<[[Bytes; 4]; 2]> = LazyLock::new(|| {
        use base64::Engine;
        let binary = STATUSES.map(|s| Bytes::from_static(message(s)));
        let text = STATUSES
            .map(|s| Bytes::from(base64::engine::general_purpose::STANDARD.encode(message(s))));
        [binary, text]
    });
    FRAMES[usize::from(text)][status as usize].clone()
}

const STATUSES: [ServingStatus; 4] = [
    ServingStatus::Unknown,
    ServingStatus::Serving,
    ServingStatus::NotServing,
    ServingStatus::ServiceUnknown,
];

/// Every gRPC-Web answer, encoded once: binary then text, by status number.
static WEB_ANSWERS: LazyLock<[[Bytes; 4]; 2]> =
    LazyLock::new(|| [STATUSES.map(web_binary), STATUSES.map(web_text)]);

fn web_binary(status: ServingStatus) -> Bytes {
    let mut out = BytesMut::with_capacity(32);
    out.extend_from_slice(message(status));
    out.extend_from_slice(OK_TRAILERS);
    out.freeze()
}

fn web_text(status: ServingStatus) -> Bytes {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    // One base64 chunk per frame, each padded on its own, as tonic-web sends them.
    Bytes::from(engine.encode(message(status)) + &engine.encode(OK_TRAILERS))
}

/// A native answer: the message, then `grpc-status: 0` in the trailers.
struct Answer {
    message: Option<Bytes>,
    trailers: bool,
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(message) = self.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        if std::mem::take(&mut self.trailers) {
            let mut trailers = HeaderMap::with_capacity(1);
            trailers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.message.is_none() && !self.trailers
    }
}

/// An open Watch: the current status at once, then each change, each a frame
/// encoded once for every watcher of every service.
struct Watching {
    /// The status when the call came, until it is sent.
    first: Option<ServingStatus>,
    /// The next change, with the receiver inside it (dropped before `release`).
    changed: ReusableBoxFuture<'static, (Result<(), RecvError>, watch::Receiver<ServingStatus>)>,
    /// Held for its drop: it frees an unknown name's channel after the receiver.
    _release: Release,
    last: Option<ServingStatus>,
    wire: Wire,
    draining: CancellationToken,
    deadline: Option<Pin<Box<Sleep>>>,
    /// The last frame, once the stream is ending.
    ending: Option<Frame<Bytes>>,
    call: Call,
}

impl Watching {
    fn frame(&mut self, status: ServingStatus) -> Frame<Bytes> {
        self.last = Some(status);
        let text = matches!(self.wire, Wire::Web { text_out: true, .. });
        Frame::data(message_frame(status, text))
    }

    /// Ends the stream with `status`: its trailers, in the wire's form.
    fn end(&mut self, status: tonic::Status) -> Frame<Bytes> {
        self.call.ended(status.code());
        self.first = None;
        let mut trailers = HeaderMap::with_capacity(2);
        let _ = status.add_header(&mut trailers);
        match self.wire {
            Wire::Native => Frame::trailers(trailers),
            Wire::Web { text_out, .. } => {
                let mut lines = Vec::new();
                for (name, value) in &trailers {
                    lines.extend_from_slice(name.as_str().as_bytes());
                    lines.push(b':');
                    lines.extend_from_slice(value.as_bytes());
                    lines.extend_from_slice(b"\r\n");
                }
                let mut framed = vec![0x80];
                framed.extend_from_slice(&(lines.len() as u32).to_be_bytes());
                framed.extend_from_slice(&lines);
                Frame::data(if text_out {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD
                        .encode(framed)
                        .into()
                } else {
                    framed.into()
                })
            }
        }
    }
}

async fn changed(
    mut rx: watch::Receiver<ServingStatus>,
) -> (Result<(), RecvError>, watch::Receiver<ServingStatus>) {
    let result = rx.changed().await;
    (result, rx)
}

impl http_body::Body for Watching {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(end) = this.ending.take() {
            return Poll::Ready(Some(Ok(end)));
        }
        if this.call.is_done() {
            return Poll::Ready(None);
        }
        if let Some(status) = this.first.take() {
            return Poll::Ready(Some(Ok(this.frame(status))));
        }
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            let end = this.end(tonic::Status::deadline_exceeded(
                "the call reached its deadline (grpc-timeout)",
            ));
            return Poll::Ready(Some(Ok(end)));
        }
        loop {
            let (result, mut rx) = std::task::ready!(this.changed.poll(cx));
            if result.is_err() {
                let end = this.end(tonic::Status::unavailable("the health registry is gone"));
                return Poll::Ready(Some(Ok(end)));
            }
            let status = *rx.borrow_and_update();
            this.changed.set(changed(rx));
            let draining = this.draining.is_cancelled();
            let news = this.last != Some(status);
            let frame = news.then(|| this.frame(status));
            if draining {
                // A change that is already there goes out before the stream ends.
                let end = this.end(tonic::Status::unavailable(
                    "the server is shutting down; reconnect to another instance",
                ));
                match frame {
                    Some(frame) => {
                        this.ending = Some(end);
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    None => return Poll::Ready(Some(Ok(end))),
                }
            }
            if let Some(frame) = frame {
                return Poll::Ready(Some(Ok(frame)));
            }
            // Woken with nothing new (a status set back, or the drain's nudge
            // before it begins): wait again.
        }
    }
}

pin_project_lite::pin_project! {
    /// A request body whose first bytes were already read: they come first again.
    pub struct Prefixed<B> {
        prefix: Option<Bytes>,
        #[pin]
        rest: B,
    }
}

impl<B: http_body::Body<Data = Bytes>> http_body::Body for Prefixed<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        if let Some(prefix) = this.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        this.rest.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answers_are_the_bytes_tonic_web_sends() {
        // As the README's curl lines show them.
        assert_eq!(
            &web_binary(ServingStatus::Serving)[..],
            b"\0\0\0\0\x02\x08\x01\x80\0\0\0\x0fgrpc-status:0\r\n"
        );
        assert_eq!(
            &web_text(ServingStatus::Serving)[..],
            b"AAAAAAIIAQ==gAAAAA9ncnBjLXN0YXR1czowDQo="
        );
        assert_eq!(
            decode_base64(b"AAAAAAIIAQ==gAAAAA9ncnBjLXN0YXR1czowDQo=").unwrap(),
            web_binary(ServingStatus::Serving)
        );
        assert_eq!(
            decode_base64(b"AAAAAAA=").unwrap(),
            Bytes::from_static(b"\0\0\0\0\0")
        );
        assert!(decode_base64(b"not base64!").is_none());
    }
}
