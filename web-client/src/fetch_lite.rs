//! The `fetch-lite` browser transport: gRPC-Web (binary) straight over `fetch`, written
//! against the protocol (`PROTOCOL-WEB.md`) rather than through tonic and
//! tonic-web-wasm-client, whose HTTP machinery is most of the default build's bytes.
//! For embedders who count them; the JavaScript API is the same.
//!
//! Dropping a call aborts its `fetch`, which is how a deadline or `WatchHandle.close()`
//! ends the HTTP request.

use js_sys::{Promise, Reflect, Uint8Array};
use tonic::Code;
use wasm_bindgen::{JsCast, prelude::wasm_bindgen};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, ReadableStreamDefaultReader, RequestInit, Response};

use crate::{
    Error,
    core::{Call, MessageStream, Transport},
    frames::{self, Decoder, Frame},
};

#[wasm_bindgen]
extern "C" {
    // `globalThis.fetch`, so the client also runs in workers, not only windows.
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_with_init(url: &str, init: &RequestInit) -> Promise;
}

/// The browser's transport in the `fetch-lite` build.
pub type Browser = GrpcWeb;

/// The [`Browser`] transport to the gRPC-Web endpoint at `base_url` (`""` is the page's own origin).
pub fn browser(base_url: &str) -> Browser {
    GrpcWeb::new(base_url)
}

/// A gRPC-Web endpoint, by its base URL (`""` is the page's own origin).
#[derive(Debug, Clone)]
pub struct GrpcWeb {
    base_url: String,
}

impl GrpcWeb {
    /// The endpoint at `base_url`, for example `https://status.example.com`.
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    async fn open(&self, method: &str, message: &[u8], call: Call<'_>) -> Result<Frames, Error> {
        let url = format!("{}{method}", self.base_url);
        let js = |_| Error::new(Code::Internal, "the browser refused to build the request");
        let headers = Headers::new().map_err(js)?;
        for (name, value) in [
            ("content-type", "application/grpc-web+proto"),
            ("x-grpc-web", "1"),
        ] {
            headers.set(name, value).map_err(js)?;
        }
        if let Some(timeout) = call.timeout {
            headers
                .set(
                    "grpc-timeout",
                    &healthweb_proto::wire::format_timeout(timeout),
                )
                .map_err(js)?;
        }
        for (name, value) in call.headers {
            headers
                .set(name, value)
                .map_err(|_| Error::InvalidOption(format!("header \"{name}\"")))?;
        }
        let abort = AbortController::new().map_err(js)?;
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_body(&Uint8Array::from(
            &healthweb_proto::wire::message_frame(message)[..],
        ));
        init.set_signal(Some(&abort.signal()));
        let response: Response = JsFuture::from(fetch_with_init(&url, &init))
            .await
            .map_err(|_| Error::new(Code::Unavailable, &format!("cannot reach {url}")))?
            .unchecked_into();

        let mut frames = Frames {
            abort,
            reader: None,
            decoder: Decoder::default(),
            url,
        };
        let header = |name| response.headers().get(name).ok().flatten();
        if let Some(code) = header("grpc-status") {
            // Trailers-only: the status came in the headers and there is no body.
            frames::status(Some(&code), header("grpc-message").as_deref())?;
            return Ok(frames);
        }
        if !response.ok() {
            let status = response.status();
            return Err(Error::new(
                frames::code_for_http(status),
                &format!("HTTP {status} from {}", frames.url),
            ));
        }
        if !header("content-type").is_some_and(|t| t.starts_with("application/grpc-web")) {
            return Err(Error::new(
                Code::Unknown,
                &format!("{} is not a gRPC-Web endpoint", frames.url),
            ));
        }
        frames.reader = response
            .body()
            .map(|body| body.get_reader().unchecked_into());
        Ok(frames)
    }
}

impl Transport for GrpcWeb {
    type Stream = Frames;

    async fn unary(
        &self,
        method: &'static str,
        request: Vec<u8>,
        call: Call<'_>,
    ) -> Result<Vec<u8>, Error> {
        let mut frames = self.open(method, &request, call).await?;
        let reply = frames
            .message()
            .await?
            .ok_or_else(|| Error::new(Code::Internal, "no reply message"))?;
        // The trailers that follow say whether the call succeeded after all.
        frames.message().await?;
        Ok(reply)
    }

    async fn server_streaming(
        &self,
        method: &'static str,
        request: Vec<u8>,
        call: Call<'_>,
    ) -> Result<Frames, Error> {
        self.open(method, &request, call).await
    }
}

/// The response body of one call, read frame by frame; dropping it aborts the `fetch`.
pub struct Frames {
    abort: AbortController,
    reader: Option<ReadableStreamDefaultReader>,
    decoder: Decoder,
    url: String,
}

impl Frames {
    async fn message(&mut self) -> Result<Option<Vec<u8>>, Error> {
        loop {
            match self.decoder.next_frame() {
                Some(Frame::Message(bytes)) => return Ok(Some(bytes)),
                Some(Frame::End(end)) => return end.map(|()| None),
                None => {}
            }
            let lost = || {
                Error::new(
                    Code::Unavailable,
                    &format!("lost the connection to {}", self.url),
                )
            };
            let Some(reader) = &self.reader else {
                return Ok(None);
            };
            let chunk = JsFuture::from(reader.read()).await.map_err(|_| lost())?;
            let value = Reflect::get(&chunk, &"value".into()).unwrap_or_default();
            match value.dyn_into::<Uint8Array>() {
                Ok(bytes) => self.decoder.push(&bytes.to_vec()),
                // The body ended before the trailers: the server or a proxy cut the call.
                Err(_) => return Err(lost()),
            }
        }
    }
}

impl MessageStream for Frames {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.message().await
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        self.abort.abort();
    }
}
