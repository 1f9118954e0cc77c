//! Watch as the spec wants clients to use it: any ending but UNIMPLEMENTED is retried
//! with exponential backoff (reset once a message arrives); UNIMPLEMENTED means the
//! server has no Watch, so the client polls Check instead and never retries Watch.

use std::{ops::ControlFlow, time::Duration};

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

/// What a stream kept open by [`Client::follow`] does with its messages and endings.
pub(crate) trait Follower {
    /// The request of the next attempt.
    fn request(&self) -> Vec<u8>;
    /// One message of the stream; an error ends the attempt.
    fn message(&mut self, message: Vec<u8>) -> Result<(), Error>;
    /// An attempt ended (`error` is `None` when the server ended it with OK), which
    /// leaves `state`; `Break` stops following.
    fn ended(&mut self, state: ConnState, error: Option<Error>) -> ControlFlow<()>;
}

impl<T: Transport> Client<T> {
    /// Keeps one server-streaming call open, as the spec wants a Watch kept: any
    /// ending is retried with exponential backoff (reset once a message is taken),
    /// and the server sends a message at once, so each attempt's first message must
    /// come within the deadline: a hung server is a failed attempt, not a silent
    /// "live". One loop for Watch and WatchAll (the follower is `dyn`, so the
    /// browser module holds it once).
    pub(crate) async fn follow(&self, method: &'static str, follower: &mut dyn Follower) {
        let mut backoff = Backoff::default();
        let mut failures = 0;
        loop {
            let ended = async {
                let (mut stream, mut next) = self.open_first(method, follower.request()).await?;
                while let Some(message) = next {
                    follower.message(message)?;
                    backoff.reset();
                    failures = 0;
                    next = stream.next().await?;
                }
                Ok(())
            }
            .await;
            failures += 1;
            let state = state_after(failures, ConnState::Live);
            if follower.ended(state, ended.err()).is_break() {
                return;
            }
            rt::sleep(backoff.next_delay()).await;
        }
    }

    /// Reports every status change of `service` to `on_update`, forever: cancel by
    /// dropping the future.
    pub async fn watch(&self, service: &str, on_update: impl FnMut(Update)) {
        let mut watching = Watching {
            service,
            status: ServingStatus::Unknown,
            on_update,
        };
        self.follow(path::WATCH, &mut watching).await;
        self.poll(service, watching.status, watching.on_update)
            .await
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

/// A Watch of one service: its status, reported as it changes and with every
/// failed attempt; UNIMPLEMENTED stops it (the client polls Check instead).
struct Watching<'a, F> {
    service: &'a str,
    status: ServingStatus,
    on_update: F,
}

impl<F: FnMut(Update)> Follower for Watching<'_, F> {
    fn request(&self) -> Vec<u8> {
        HealthCheckRequest {
            service: self.service.to_owned(),
        }
        .encode_to_vec()
    }

    fn message(&mut self, message: Vec<u8>) -> Result<(), Error> {
        self.status = decode::<HealthCheckResponse>(&message)?.status();
        (self.on_update)(Update {
            status: self.status,
            state: ConnState::Live,
            error: None,
        });
        Ok(())
    }

    fn ended(&mut self, state: ConnState, error: Option<Error>) -> ControlFlow<()> {
        // The spec: never retry a Watch the server does not have.
        if error
            .as_ref()
            .is_some_and(|e| e.code() == Code::Unimplemented)
        {
            return ControlFlow::Break(());
        }
        (self.on_update)(Update {
            status: self.status,
            state,
            error,
        });
        ControlFlow::Continue(())
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
