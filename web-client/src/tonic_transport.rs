//! The native transport: tonic's generated client over any tonic channel, so the
//! command-line probe can speak native gRPC (tonic's `Channel`) or gRPC-Web (a channel
//! wrapped in tonic-web's `GrpcWebClientLayer`) with the same core as the browser.

use healthweb_proto::pb::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
    health_client::HealthClient,
};
use tonic::{
    Extensions, Request, Streaming,
    client::GrpcService,
    codegen::{Body, Bytes, StdError},
    metadata::{MetadataKey, MetadataMap, MetadataValue},
};

use crate::{
    Error,
    core::{Call, Transport, WatchStream, grpc_timeout},
};

impl<T> Transport for HealthClient<T>
where
    T: GrpcService<tonic::body::Body> + Clone,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    type Watch = Streaming<HealthCheckResponse>;

    async fn check(
        &self,
        request: HealthCheckRequest,
        call: Call<'_>,
    ) -> Result<HealthCheckResponse, Error> {
        Ok(
            HealthClient::check(&mut self.clone(), tonic_request(request, call)?)
                .await
                .map_err(|status| from_status(status, call.timeout))?
                .into_inner(),
        )
    }

    async fn list(
        &self,
        request: HealthListRequest,
        call: Call<'_>,
    ) -> Result<HealthListResponse, Error> {
        Ok(
            HealthClient::list(&mut self.clone(), tonic_request(request, call)?)
                .await
                .map_err(|status| from_status(status, call.timeout))?
                .into_inner(),
        )
    }

    async fn watch(
        &self,
        request: HealthCheckRequest,
        call: Call<'_>,
    ) -> Result<Self::Watch, Error> {
        Ok(
            HealthClient::watch(&mut self.clone(), tonic_request(request, call)?)
                .await
                .map_err(|status| from_status(status, call.timeout))?
                .into_inner(),
        )
    }
}

impl WatchStream for Streaming<HealthCheckResponse> {
    async fn message(&mut self) -> Result<Option<HealthCheckResponse>, Error> {
        Ok(Streaming::message(self).await?)
    }
}

/// tonic's channel enforces the `grpc-timeout` it sends, and reports the expiry
/// as CANCELLED ("Timeout expired"); for the caller it is the deadline passing.
fn from_status(status: tonic::Status, timeout: Option<std::time::Duration>) -> Error {
    match timeout {
        Some(limit)
            if status.code() == tonic::Code::Cancelled && status.message() == "Timeout expired" =>
        {
            Error::Deadline(limit)
        }
        _ => status.into(),
    }
}

fn tonic_request<M>(message: M, call: Call<'_>) -> Result<Request<M>, Error> {
    Ok(Request::from_parts(
        metadata(call)?,
        Extensions::default(),
        message,
    ))
}

/// The call's headers and deadline; apart from the generic [`tonic_request`] so the
/// browser module holds this code once, not once per message type.
fn metadata(call: Call<'_>) -> Result<MetadataMap, Error> {
    let timeout = call.timeout.map(grpc_timeout);
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
