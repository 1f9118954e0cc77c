//! The client core, shared by the browser and native builds: Check and List under a
//! deadline, with the caller's extra headers on every call, over any [`Transport`].
//! Watch, built on the same transport, lives in [`crate::watch`].
//!
//! The deadline is enforced twice: sent as `grpc-timeout` so the server can give up too,
//! and raced against a local timer, because a hung server (or a proxy that drops the
//! header) would otherwise leave the caller waiting forever.

use std::time::Duration;

use healthweb_proto::pb::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
    health_check_response::ServingStatus,
};

use crate::{Error, rt};

/// What every call carries besides its message.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The deadline to send as `grpc-timeout`, if any.
    pub timeout: Option<Duration>,
    /// Extra request headers, names in lower case.
    pub headers: &'a [(String, String)],
}

/// The three Health RPCs over some wire: tonic's generated client over any tonic channel
/// (`crate::tonic_transport`: tonic-web-wasm-client in the browser, HTTP/2 or gRPC-Web
/// natively), or gRPC-Web straight over `fetch` in the `fetch-lite` build.
pub trait Transport {
    /// An open Watch call.
    type Watch: WatchStream;
    /// `grpc.health.v1.Health/Check`.
    fn check(
        &self,
        request: HealthCheckRequest,
        call: Call<'_>,
    ) -> impl Future<Output = Result<HealthCheckResponse, Error>>;
    /// `grpc.health.v1.Health/List`.
    fn list(
        &self,
        request: HealthListRequest,
        call: Call<'_>,
    ) -> impl Future<Output = Result<HealthListResponse, Error>>;
    /// `grpc.health.v1.Health/Watch`, once the server has accepted the call.
    fn watch(
        &self,
        request: HealthCheckRequest,
        call: Call<'_>,
    ) -> impl Future<Output = Result<Self::Watch, Error>>;
}

/// `limit` as a `grpc-timeout` value: whole milliseconds (rounded up, so never zero)
/// while they fit the spec's 8 digits, then seconds, then hours. Written here rather
/// than through tonic's `Request::set_timeout`, whose nanosecond-first `u128`
/// arithmetic and formatting the browser module would carry for a header it fills
/// the same way.
pub fn grpc_timeout(limit: Duration) -> String {
    const MAX: u64 = 99_999_999;
    let secs = limit.as_secs();
    let ms = secs
        .saturating_mul(1000)
        .saturating_add(u64::from(limit.subsec_nanos().div_ceil(1_000_000)))
        .max(1);
    let (value, unit) = match () {
        () if ms <= MAX => (ms, 'm'),
        () if secs <= MAX => (secs, 'S'),
        () => ((secs / 3600).min(MAX), 'H'),
    };
    format!("{value}{unit}")
}

/// The messages of an open Watch call.
pub trait WatchStream {
    /// The next message; `Ok(None)` once the server ends the call with OK.
    fn message(&mut self) -> impl Future<Output = Result<Option<HealthCheckResponse>, Error>>;
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

    /// The status of `service` (`""` is the server as a whole); NOT_FOUND if unknown.
    pub async fn check(&self, service: &str) -> Result<ServingStatus, Error> {
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        let reply = self
            .within_deadline(self.transport.check(request, self.call(true)))
            .await?;
        Ok(reply.status())
    }

    /// Every service the server knows, with its status, in no particular order.
    pub async fn list(&self) -> Result<Vec<(String, ServingStatus)>, Error> {
        let reply = self
            .within_deadline(self.transport.list(HealthListRequest {}, self.call(true)))
            .await?;
        Ok(reply
            .statuses
            .into_iter()
            .map(|(name, r)| (name, r.status()))
            .collect())
    }

    /// Opens a Watch call on `service`: one stream, no reconnects (the upstream
    /// monitor counts those itself; [`Client::watch`] does them for everyone else).
    pub async fn open_watch(&self, service: &str) -> Result<T::Watch, Error> {
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        self.transport.watch(request, self.call(false)).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_fits_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_millis(300)), "300m");
        assert_eq!(grpc_timeout(Duration::from_micros(1)), "1m");
        assert_eq!(grpc_timeout(Duration::from_micros(1500)), "2m");
        assert_eq!(grpc_timeout(Duration::from_secs(100_000)), "100000S");
        assert_eq!(grpc_timeout(Duration::from_secs(u64::MAX)), "99999999H");
    }
}
