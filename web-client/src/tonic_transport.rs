//! The [`Transport`] over tonic's gRPC client (`tonic::client::Grpc`, what generated
//! stubs wrap) on any tonic channel: native gRPC (tonic's `Channel`), gRPC-Web through
//! tonic-web's `GrpcWebClientLayer`, and in the default browser build
//! tonic-web-wasm-client. The command-line probe, the upstream monitor and the browser
//! share this one path.
//!
//! Messages pass through as bytes ([`Raw`]); the core encodes and decodes them. One
//! codec for every method means one copy of tonic's call path whatever the number of
//! methods: with prost's codec, each method was another (about 2 KB of the browser
//! module each).

use tonic::{
    Extensions, Request, Status, Streaming,
    client::{Grpc, GrpcService},
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::{Body, Bytes, StdError, http::uri::PathAndQuery},
    metadata::{MetadataKey, MetadataMap, MetadataValue},
};

use crate::{
    Error,
    core::{Call, MessageStream, Transport},
};

impl<T> Transport for Grpc<T>
where
    T: GrpcService<tonic::body::Body> + Clone,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    type Stream = Streaming<Vec<u8>>;

    async fn unary(
        &self,
        method: &'static str,
        request: Vec<u8>,
        call: Call<'_>,
    ) -> Result<Vec<u8>, Error> {
        let mut grpc = ready(self).await?;
        let path = PathAndQuery::from_static(method);
        let reply = Grpc::unary(&mut grpc, tonic_request(request, call)?, path, Raw).await;
        Ok(reply
            .map_err(|status| from_status(status, call.timeout))?
            .into_inner())
    }

    async fn server_streaming(
        &self,
        method: &'static str,
        request: Vec<u8>,
        call: Call<'_>,
    ) -> Result<Self::Stream, Error> {
        let mut grpc = ready(self).await?;
        let path = PathAndQuery::from_static(method);
        let request = tonic_request(request, call)?;
        let reply = Grpc::server_streaming(&mut grpc, request, path, Raw).await;
        Ok(reply
            .map_err(|status| from_status(status, call.timeout))?
            .into_inner())
    }
}

/// A clone of the client once its channel can take a call (as generated stubs do).
async fn ready<T>(grpc: &Grpc<T>) -> Result<Grpc<T>, Error>
where
    T: GrpcService<tonic::body::Body> + Clone,
    T::Error: Into<StdError>,
{
    let mut grpc = grpc.clone();
    grpc.ready().await.map_err(|error| {
        let error: StdError = error.into();
        Error::new(tonic::Code::Unavailable, &error.to_string())
    })?;
    Ok(grpc)
}

impl MessageStream for Streaming<Vec<u8>> {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.message().await?)
    }
}

/// The codec of every call: encoded messages in, encoded messages out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

// Small first buffers, as the server's codec has them: tonic's 8 KiB each would be
// most of what the monitor's 10,000 Watch streams cost.
impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn buffer_settings(&self) -> tonic::codec::BufferSettings {
        healthweb_proto::codec::buffers()
    }

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn buffer_settings(&self) -> tonic::codec::BufferSettings {
        healthweb_proto::codec::buffers()
    }

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut message = vec![0; bytes::Buf::remaining(src)];
        bytes::Buf::copy_to_slice(src, &mut message);
        Ok(Some(message))
    }
}

/// tonic's channel enforces the `grpc-timeout` it sends, and reports the expiry
/// as CANCELLED ("Timeout expired"); for the caller it is the deadline passing.
/// Natively, a status made of a transport error (a channel that dials on its first
/// call, and failed) says why: "transport error: tcp connect error: Connection refused".
fn from_status(status: Status, timeout: Option<std::time::Duration>) -> Error {
    match timeout {
        Some(limit)
            if status.code() == tonic::Code::Cancelled && status.message() == "Timeout expired" =>
        {
            Error::Deadline(limit)
        }
        #[cfg(feature = "native")]
        _ => match std::error::Error::source(&status) {
            Some(source) => {
                // tonic's message is its transport error's own text, which the chain
                // repeats: "tcp connect error" is said once.
                let why = crate::native::error_chain(source);
                if why.contains(status.message()) {
                    Error::new(status.code(), &why)
                } else {
                    Error::new(status.code(), &format!("{}: {why}", status.message()))
                }
            }
            None => status.into(),
        },
        #[cfg(not(feature = "native"))]
        _ => status.into(),
    }
}

fn tonic_request(message: Vec<u8>, call: Call<'_>) -> Result<Request<Vec<u8>>, Error> {
    Ok(Request::from_parts(
        metadata(call)?,
        Extensions::default(),
        message,
    ))
}

/// The call's headers and deadline.
fn metadata(call: Call<'_>) -> Result<MetadataMap, Error> {
    let timeout = call.timeout.map(healthweb_proto::wire::format_timeout);
    let deadline = timeout.as_deref().map(|value| ("grpc-timeout", value));
    let headers = call.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    // One parse-and-insert path for every header, the deadline included: each distinct
    // key or value type would be another copy of tonic's header code in the module.
    let mut metadata = MetadataMap::new();
    for (name, value) in headers.chain(deadline) {
        let bad = || Error::InvalidOption(format!("bad header \"{name}\""));
        let key = MetadataKey::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let value = MetadataValue::try_from(value).map_err(|_| bad())?;
        metadata.insert(key, value);
    }
    Ok(metadata)
}
