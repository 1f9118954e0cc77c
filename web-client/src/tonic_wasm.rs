//! The default browser transport: tonic's gRPC client over tonic-web-wasm-client, which
//! speaks gRPC-Web over `fetch`. The calls themselves go through the same
//! [`Transport`](crate::Transport) impl as native ones (`tonic_transport`); this module
//! only adds what the browser needs on top.
//!
//! [`WasmChannel`] wraps tonic-web-wasm-client's `Client` so that its failures reach the
//! caller with the gRPC code the spec gives them: a `fetch` that never got an answer is
//! UNAVAILABLE, as a refused connection is natively (tonic alone would say UNKNOWN).
//!
//! Dropping a call drops tonic-web-wasm-client's response body, whose guard aborts the
//! `fetch`: that is how a deadline or `WatchHandle.close()` ends the HTTP request, and the
//! browser tests check that the server sees it end.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use http_body::Frame;
use tonic::{
    Status,
    client::Grpc,
    codegen::{Body, Bytes, Service, http},
};
use tonic_web_wasm_client::{Client, Error as FetchError, ResponseBody};

/// The browser's transport: tonic's client over [`WasmChannel`].
pub type Browser = Grpc<WasmChannel>;

/// The [`Browser`] transport to the gRPC-Web endpoint at `base_url` (`""` is the page's own origin).
pub fn browser(base_url: &str) -> Browser {
    Grpc::new(WasmChannel::new(base_url))
}

/// tonic-web-wasm-client's `Client`, whose errors are turned into gRPC statuses.
#[derive(Debug, Clone)]
pub struct WasmChannel {
    inner: Client,
    base_url: String,
}

impl WasmChannel {
    /// A channel to `base_url`, for example `https://status.example.com`.
    pub fn new(base_url: &str) -> Self {
        // tonic's request paths start with a slash; a second one would make another URL.
        let base_url = base_url.trim_end_matches('/').to_owned();
        Self {
            inner: Client::new(base_url.clone()),
            base_url,
        }
    }
}

impl Service<http::Request<tonic::body::Body>> for WasmChannel {
    type Response = http::Response<Reply>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Status>>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let sent = self.inner.call(request);
        let url = self.base_url.clone();
        Box::pin(async move {
            match sent.await {
                Ok(response) => Ok(response.map(|body| Reply { body, url })),
                Err(FetchError::TonicStatusError(status)) => Err(status),
                // `fetch` itself rejected: no connection, or CORS refused it.
                Err(FetchError::JsError(_)) => {
                    Err(Status::unavailable(format!("cannot reach {url}")))
                }
                Err(FetchError::MissingContentTypeHeader | FetchError::InvalidContentType(_)) => {
                    Err(Status::unknown(format!("{url} is not a gRPC-Web endpoint")))
                }
                Err(_) => Err(Status::internal(format!("{url} sent a malformed response"))),
            }
        })
    }
}

/// A response body whose read failures are gRPC statuses.
pub struct Reply {
    body: ResponseBody,
    url: String,
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        Pin::new(&mut this.body)
            .poll_frame(cx)
            .map_err(|error| match error {
                FetchError::TonicStatusError(status) => status,
                // The body stopped (JsError) or ended before the trailers (MalformedResponse):
                // the server or a proxy cut the call, which the spec calls UNAVAILABLE.
                FetchError::JsError(_) | FetchError::MalformedResponse => {
                    Status::unavailable(format!("lost the connection to {}", this.url))
                }
                _ => Status::internal(format!("{} sent a malformed response", this.url)),
            })
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}
