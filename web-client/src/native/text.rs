//! gRPC-Web text on top of tonic-web's binary client: the request body goes out
//! base64-encoded as `application/grpc-web-text`, and the answer's base64 chunks
//! (each padded on its own) are decoded as they arrive, so Watch still streams.
//! In binary mode the layer only unifies the body types.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use healthweb_proto::wire::{self, TextDecoder};
use http::{HeaderValue, Request, Response, header};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, combinators::UnsyncBoxBody};
use tower::{Layer, Service};

use super::{BoxError, HttpClient};

/// The body type both directions share below tonic-web, and every request of
/// [`super::HttpClient`].
pub type BoxBody = UnsyncBoxBody<Bytes, BoxError>;

/// Turns binary gRPC-Web into text when `text` is set.
#[derive(Debug, Clone, Copy)]
pub struct TextLayer {
    text: bool,
}

impl TextLayer {
    /// A layer for text (`true`) or binary (`false`) gRPC-Web.
    pub fn new(text: bool) -> Self {
        Self { text }
    }
}

impl Layer<HttpClient> for TextLayer {
    type Service = Text;

    fn layer(&self, inner: HttpClient) -> Text {
        Text {
            inner,
            text: self.text,
        }
    }
}

/// See [`TextLayer`].
#[derive(Clone)]
pub struct Text {
    inner: HttpClient,
    text: bool,
}

impl<B> Service<Request<B>> for Text
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Service::<Request<BoxBody>>::poll_ready(&mut self.inner, cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was driven ready goes into the future; the fresh one stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let text = self.text;
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let body: BoxBody = if text {
                // Health requests are one small message: encode it whole.
                let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(wire::content_type::GRPC_WEB_TEXT),
                );
                parts.headers.insert(
                    header::ACCEPT,
                    HeaderValue::from_static(wire::content_type::GRPC_WEB_TEXT),
                );
                super::full_body(wire::text_encode(&bytes))
            } else {
                body.map_err(Into::into).boxed_unsync()
            };
            let response = inner.call(Request::from_parts(parts, body)).await?;
            let is_text = response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|ct| {
                    ct.as_bytes()
                        .starts_with(wire::content_type::GRPC_WEB_TEXT.as_bytes())
                });
            let (mut parts, body) = response.into_parts();
            let body = body.map_err(BoxError::from);
            if is_text {
                // tonic-web's client reads binary; tell it that is what it gets.
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(wire::content_type::GRPC_WEB_PROTO),
                );
                let decoded = Decode {
                    inner: body.boxed_unsync(),
                    text: TextDecoder::default(),
                };
                Ok(Response::from_parts(parts, decoded.boxed_unsync()))
            } else {
                Ok(Response::from_parts(parts, body.boxed_unsync()))
            }
        })
    }
}

/// Decodes base64 chunks as they arrive ([`TextDecoder`]), so Watch still streams.
struct Decode {
    inner: BoxBody,
    text: TextDecoder,
}

impl Body for Decode {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let bytes = self
                            .text
                            .push(&data)
                            .map_err(|e| format!("bad base64 in the grpc-web-text answer: {e}"))?;
                        if !bytes.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(bytes.into()))));
                        }
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None if self.text.is_whole() => return Poll::Ready(None),
                None => {
                    return Poll::Ready(Some(Err(
                        "the grpc-web-text answer ends mid-quantum".into()
                    )));
                }
            }
        }
    }
}
