//! Watch as the spec wants clients to use it: any ending but UNIMPLEMENTED is retried
//! with exponential backoff (reset once a message arrives); UNIMPLEMENTED means the
//! server has no Watch, so the client polls Check instead and never retries Watch.

use std::time::Duration;

use tonic::Code;

use healthweb_proto::pb::{HealthCheckRequest, HealthCheckResponse};
use prost::Message;

use crate::{
    Client, Error, MessageStream, ServingStatus, Transport,
    backoff::Backoff,
    core::{decode, path},
    rt,
};

/// How often Check is polled when the server does not implement Watch.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// After this many failed attempts in a row the state turns from reconnecting to down
/// (about 8 s with the default backoff); the client keeps retrying all the same.
pub const DOWN_AFTER: u32 = 5;

/// How fresh the reported status is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// A Watch stream is open: every change arrives as it happens.
    Live,
    /// The last attempt failed; retrying with backoff. The status is the last one seen.
    Reconnecting,
    /// The server has no Watch: the status comes from Check every [`POLL_INTERVAL`].
    Polling,
    /// [`DOWN_AFTER`] attempts in a row failed; still retrying, at the longest backoff.
    Down,
}

impl ConnState {
    /// The JavaScript spelling: `"live" | "reconnecting" | "polling" | "down"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Reconnecting => "reconnecting",
            Self::Polling => "polling",
            Self::Down => "down",
        }
    }
}

/// One report to the watcher's callback.
#[derive(Debug)]
pub struct Update {
    /// The service's status (SERVICE_UNKNOWN if the server does not know it).
    pub status: ServingStatus,
    /// How fresh that status is.
    pub state: ConnState,
    /// Why the last attempt failed, when the state says it did.
    pub error: Option<Error>,
}

impl<T: Transport> Client<T> {
    /// Reports every status change of `service` to `on_update`, forever: cancel by
    /// dropping the future.
    pub async fn watch(&self, service: &str, mut on_update: impl FnMut(Update)) {
        let mut backoff = Backoff::default();
        let mut status = ServingStatus::Unknown;
        let mut failures = 0;
        loop {
            let ended = self
                .stream(service, &mut |s| {
                    backoff.reset();
                    failures = 0;
                    status = s;
                    on_update(Update {
                        status: s,
                        state: ConnState::Live,
                        error: None,
                    });
                })
                .await;
            let error = match ended {
                Err(e) if e.code() == Code::Unimplemented => break,
                Err(e) => Some(e),
                Ok(()) => None,
            };
            failures += 1;
            let state = state_after(failures, ConnState::Live);
            on_update(Update {
                status,
                state,
                error,
            });
            rt::sleep(backoff.next_delay()).await;
        }
        self.poll(service, status, on_update).await
    }

    /// One Watch call: Ok if the server ended it with OK, which the spec also retries.
    /// The server sends the current status at once, so the first message must come
    /// within the deadline: a hung server is a failed attempt, not a silent "live".
    async fn stream(
        &self,
        service: &str,
        on_status: &mut dyn FnMut(ServingStatus),
    ) -> Result<(), Error> {
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        let (mut stream, mut next) = self
            .open_first(path::WATCH, request.encode_to_vec())
            .await?;
        while let Some(message) = next {
            on_status(decode::<HealthCheckResponse>(&message)?.status());
            next = stream.next().await?;
        }
        Ok(())
    }

    /// Check every [`POLL_INTERVAL`], reporting changes and failures; NOT_FOUND is
    /// SERVICE_UNKNOWN, as Watch would have said.
    async fn poll(
        &self,
        service: &str,
        mut status: ServingStatus,
        mut on_update: impl FnMut(Update),
    ) {
        let mut backoff = Backoff::default();
        let mut failures = 0;
        let mut last = None;
        loop {
            let (error, delay) = match self.check(service).await {
                Err(e) if e.code() != Code::NotFound => {
                    failures += 1;
                    (Some(e), backoff.next_delay())
                }
                answer => {
                    status = answer.unwrap_or(ServingStatus::ServiceUnknown);
                    failures = 0;
                    backoff.reset();
                    (None, POLL_INTERVAL)
                }
            };
            let state = state_after(failures, ConnState::Polling);
            if error.is_some() || last != Some((status, state)) {
                last = Some((status, state));
                on_update(Update {
                    status,
                    state,
                    error,
                });
            }
            rt::sleep(delay).await;
        }
    }
}

/// `ok` while nothing failed, then reconnecting, then down after [`DOWN_AFTER`] failures.
fn state_after(failures: u32, ok: ConnState) -> ConnState {
    match failures {
        0 => ok,
        n if n >= DOWN_AFTER => ConnState::Down,
        _ => ConnState::Reconnecting,
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[path = "watch_tests.rs"]
mod tests;
