//! The client core, shared by the browser and native builds: Check, List and the
//! History calls under a deadline, with the caller's extra headers on every call, over
//! any [`Transport`]. Watch, built on the same transport, lives in [`crate::watch`].
//!
//! The core knows the messages; a transport only moves their bytes. That keeps each
//! transport to one path for unary calls and one for streams however many methods there
//! are, which matters in the browser, where every path through tonic is kilobytes.
//!
//! The deadline is enforced twice: sent as `grpc-timeout` so the server can give up too,
//! and raced against a local timer, because a hung server (or a proxy that drops the
//! header) would otherwise leave the caller waiting forever.

use std::time::Duration;

use healthweb_proto::pb::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
    health_check_response::ServingStatus,
};
use prost::Message;
use tonic::Code;

use crate::{Error, rt};

pub use healthweb_proto::wire::path;

/// What every call carries besides its message.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The deadline to send as `grpc-timeout`, if any.
    pub timeout: Option<Duration>,
    /// Extra request headers, names in lower case.
    pub headers: &'a [(String, String)],
}

/// A wire that carries encoded messages to gRPC methods: tonic's client over any tonic
/// channel (`crate::tonic_transport`: tonic-web-wasm-client in the browser, HTTP/2 or
/// gRPC-Web natively), or gRPC-Web straight over `fetch` in the `fetch-lite` build.
pub trait Transport {
    /// The replies of an open server-streaming call.
    type Stream: MessageStream;
    /// A unary call of `method` (a path such as [`path::CHECK`]) with an encoded
    /// request; the encoded reply.
    fn unary(
        &self,
        method: &'static str,
        request: Vec<u8>,
        call: Call<'_>,
    ) -> impl Future<Output = Result<Vec<u8>, Error>>;
    /// A server-streaming call of `method`, once the server has accepted it.
    fn server_streaming(
        &self,
        method: &'static str,
        request: Vec<u8>,
        call: Call<'_>,
    ) -> impl Future<Output = Result<Self::Stream, Error>>;
}

/// The encoded replies of an open server-streaming call.
pub trait MessageStream {
    /// The next reply; `Ok(None)` once the server ends the call with OK.
    fn next(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>, Error>>;
}

/// An open Watch call.
#[derive(Debug)]
pub struct Watch<S>(S);

impl<S: MessageStream> Watch<S> {
    /// The next status; `Ok(None)` once the server ends the call with OK.
    pub async fn message(&mut self) -> Result<Option<HealthCheckResponse>, Error> {
        match self.0.next().await? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }
}

/// A reply's bytes as the message `M`.
pub(crate) fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, Error> {
    M::decode(bytes).map_err(|_| undecodable())
}

/// Apart from `decode`, which is generic, so the module holds it once.
pub(crate) fn undecodable() -> Error {
    Error::new(Code::Internal, "the server sent an undecodable message")
}

/// How every call is made.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The deadline of each Check and List, and of each Watch attempt until its first
    /// message (the stream itself then lasts as long as it is watched).
    pub timeout: Option<Duration>,
    /// Extra request headers, for example `authorization`.
    pub headers: Vec<(String, String)>,
}

/// A `grpc.health.v1` client over the transport `T`.
#[derive(Debug, Clone)]
pub struct Client<T> {
    transport: T,
    options: Options,
}

impl<T: Transport> Client<T> {
    /// A client over `transport`; fails on a header that HTTP does not allow, so that a
    /// typo shows at once rather than on the first call.
    pub fn new(transport: T, mut options: Options) -> Result<Self, Error> {
        for (name, value) in &mut options.headers {
            name.make_ascii_lowercase();
            let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
            if name.is_empty() || !name.bytes().all(token) {
                return Err(Error::InvalidOption(format!("bad header name \"{name}\"")));
            }
            if value.bytes().any(|c| c < b' ' && c != b'\t' || c == 0x7f) {
                return Err(Error::InvalidOption(format!(
                    "bad value for header \"{name}\""
                )));
            }
        }
        Ok(Self { transport, options })
    }

    /// The transport it calls through.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The status of `service` (`""` is the server as a whole); NOT_FOUND if unknown.
    pub async fn check(&self, service: &str) -> Result<ServingStatus, Error> {
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        let reply: HealthCheckResponse = self.unary(path::CHECK, &request).await?;
        Ok(reply.status())
    }

    /// Every service the server knows, with its status, in no particular order.
    pub async fn list(&self) -> Result<Vec<(String, ServingStatus)>, Error> {
        let reply: HealthListResponse = self.unary(path::LIST, &HealthListRequest {}).await?;
        Ok(reply
            .statuses
            .into_iter()
            .map(|(name, r)| (name, r.status()))
            .collect())
    }

    /// Opens a Watch call on `service`: one stream, no reconnects (the upstream
    /// monitor counts those itself; [`Client::watch`] does them for everyone else).
    pub async fn open_watch(&self, service: &str) -> Result<Watch<T::Stream>, Error> {
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        let call = self.call(false);
        let stream = self
            .transport
            .server_streaming(path::WATCH, request.encode_to_vec(), call)
            .await?;
        Ok(Watch(stream))
    }

    /// Opens a server-streaming call of `method` and reads its first message, both
    /// within the deadline: the server sends one at once, so a hung server is a failed
    /// attempt, not a silent "live". Watch and WatchAll both open their streams here,
    /// so the browser module holds the transport's streaming path once.
    pub(crate) async fn open_first(
        &self,
        method: &'static str,
        request: Vec<u8>,
    ) -> Result<(T::Stream, Option<Vec<u8>>), Error> {
        self.within_deadline(async {
            let mut stream = self
                .transport
                .server_streaming(method, request, self.call(false))
                .await?;
            let first = stream.next().await?;
            Ok((stream, first))
        })
        .await
    }

    /// One unary call under the deadline: `request` encoded, the reply decoded.
    pub(crate) async fn unary<R: prost::Message + Default>(
        &self,
        method: &'static str,
        request: &impl prost::Message,
    ) -> Result<R, Error> {
        decode(&self.unary_encoded(method, request.encode_to_vec()).await?)
    }

    /// Any unary call under the deadline and with the headers, encoded request in,
    /// encoded reply out. Not generic, so the browser module holds the transport's call
    /// path once for every method rather than once per reply type.
    pub async fn unary_encoded(
        &self,
        method: &'static str,
        request: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        let call = self.transport.unary(method, request, self.call(true));
        self.within_deadline(call).await
    }

    fn call(&self, with_deadline: bool) -> Call<'_> {
        let timeout = self.options.timeout.filter(|_| with_deadline);
        Call {
            timeout,
            headers: &self.options.headers,
        }
    }

    pub(crate) async fn within_deadline<R>(
        &self,
        call: impl Future<Output = Result<R, Error>>,
    ) -> Result<R, Error> {
        match self.options.timeout {
            None => call.await,
            Some(limit) => rt::within(limit, call)
                .await
                .unwrap_or(Err(Error::Deadline(limit))),
        }
    }
}
