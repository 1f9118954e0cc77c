//! `healthweb.v1.Statuses/WatchAll`: every service on one stream, for a page or
//! a dashboard that shows a whole fleet.
//!
//! - A snapshot first: every registered service, by name, in messages of at most
//!   [`MAX_BATCH`] statuses; the first says `reset`, the last `synced`.
//! - Then the changes, read from the registry's journal whenever its position
//!   moves: all that came since the last message in one (up to [`MAX_BATCH`]).
//! - `resume_token` (`EPOCH-POSITION`) resumes without a snapshot while the
//!   journal still reaches back to it; otherwise the stream starts over with one.
//!
//! # What a slow client costs
//! The server keeps no queue per stream: a stream holds its journal position,
//! and while it sends a snapshot, that snapshot (what List would answer). A
//! client that stops reading stops the stream's polling once the transport's
//! window is full (HTTP/2 flow control, or the socket's buffer), and when it
//! reads again and the journal (`--watch-all-backlog` changes, shared by every
//! stream) no longer reaches back to it, it gets a new snapshot instead of the
//! changes it missed.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures_util::Stream;
use healthweb_proto::{
    pb::health_check_response::ServingStatus,
    statuses::{ServiceStatus, WatchAllRequest, WatchAllResponse, statuses_server::Statuses},
};
use tonic::{Request, Response, Status};

use crate::registry::HealthRegistry;

/// Most statuses in one message: a snapshot of 10,000 services goes in ten.
pub const MAX_BATCH: usize = 1000;

/// The Statuses service over a [`HealthRegistry`].
#[derive(Debug, Clone)]
pub struct StatusesService {
    registry: HealthRegistry,
}

impl StatusesService {
    /// Serves `registry`; streams end when it ends them
    /// ([`HealthRegistry::end_streams`], at the drain).
    pub fn new(registry: HealthRegistry) -> Self {
        Self { registry }
    }
}

/// Where a resumed stream starts: `None` for a snapshot.
fn resume_at(token: &str, epoch: u64) -> Result<Option<u64>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let parsed = token
        .split_once('-')
        .and_then(|(e, p)| Some((u64::from_str_radix(e, 16).ok()?, p.parse::<u64>().ok()?)));
    match parsed {
        Some((e, position)) => Ok((e == epoch).then_some(position)),
        None => Err(Status::invalid_argument(format!(
            "resume_token {token:?} is not one healthweb gives out: send the resume_token \
             of a message received, or \"\" for a snapshot"
        ))),
    }
}

fn token(epoch: u64, position: u64) -> String {
    format!("{epoch:x}-{position}")
}

fn entry(service: impl Into<String>, status: ServingStatus) -> ServiceStatus {
    ServiceStatus {
        service: service.into(),
        status: status as i32,
    }
}

/// A WatchAll answer. A plain stream rather than an `async` block, as Watch's
/// ([`crate::health::WatchStream`]).
pub struct WatchAllStream {
    registry: HealthRegistry,
    positions: tokio_stream::wrappers::WatchStream<u64>,
    /// The journal position the client has reached (with the snapshot's rest).
    position: u64,
    /// The snapshot being sent, and whether its first message went out.
    snapshot: Option<(std::vec::IntoIter<(String, ServingStatus)>, bool)>,
    /// A resumed stream's first message, sent even when nothing changed.
    announce: bool,
    done: bool,
}

impl WatchAllStream {
    fn new(service: &StatusesService, resume: Option<u64>) -> Self {
        let registry = service.registry.clone();
        let (position, snapshot, announce) = match resume {
            Some(position) if registry.changes_since(position, 0).is_some() => {
                (position, None, true)
            }
            _ => {
                let (position, services) = registry.snapshot();
                (position, Some((services.into_iter(), false)), false)
            }
        };
        // Followed from here on: a change made since `position` is in the journal.
        Self {
            positions: tokio_stream::wrappers::WatchStream::new(registry.positions()),
            registry,
            position,
            snapshot,
            announce,
            done: false,
        }
    }

    fn message(&self, reset: bool, statuses: Vec<ServiceStatus>, synced: bool) -> WatchAllResponse {
        WatchAllResponse {
            reset,
            statuses,
            synced,
            resume_token: if synced {
                token(self.registry.epoch(), self.position)
            } else {
                String::new()
            },
        }
    }

    /// The snapshot's next message, if one is being sent.
    fn next_of_snapshot(&mut self) -> Option<WatchAllResponse> {
        let (rest, started) = self.snapshot.as_mut()?;
        let reset = !std::mem::replace(started, true);
        let statuses: Vec<_> = rest
            .by_ref()
            .take(MAX_BATCH)
            .map(|(name, status)| entry(name, status))
            .collect();
        let synced = rest.len() == 0;
        if synced {
            self.snapshot = None;
        }
        Some(self.message(reset, statuses, synced))
    }
}

impl Stream for WatchAllStream {
    type Item = Result<WatchAllResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(message) = this.next_of_snapshot() {
            return Poll::Ready(Some(Ok(message)));
        }
        // Registered for the next move first, so none falls between the read
        // below and the wait. A closed channel is the drain: what came before it
        // still goes out first.
        let ended = loop {
            match Pin::new(&mut this.positions).poll_next(cx) {
                Poll::Ready(Some(_)) => continue,
                Poll::Ready(None) => break true,
                Poll::Pending => break false,
            }
        };
        match this.registry.changes_since(this.position, MAX_BATCH) {
            None => {
                let (position, services) = this.registry.snapshot();
                this.position = position;
                this.snapshot = Some((services.into_iter(), false));
                let message = this.next_of_snapshot().expect("a snapshot was just taken");
                return Poll::Ready(Some(Ok(message)));
            }
            Some((changes, after)) if !changes.is_empty() || this.announce => {
                this.position = after;
                this.announce = false;
                let statuses = changes
                    .into_iter()
                    .map(|(name, status)| entry(&*name, status))
                    .collect();
                return Poll::Ready(Some(Ok(this.message(false, statuses, true))));
            }
            Some(_) => {}
        }
        if !ended {
            return Poll::Pending;
        }
        this.done = true;
        Poll::Ready(Some(Err(crate::health::shutting_down())))
    }
}

#[tonic::async_trait]
impl Statuses for StatusesService {
    type WatchAllStream = WatchAllStream;

    async fn watch_all(
        &self,
        request: Request<WatchAllRequest>,
    ) -> Result<Response<Self::WatchAllStream>, Status> {
        let resume = resume_at(&request.get_ref().resume_token, self.registry.epoch())?;
        Ok(Response::new(WatchAllStream::new(self, resume)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_back_and_strangers_refused() {
        assert_eq!(resume_at("", 7).unwrap(), None);
        assert_eq!(resume_at(&token(7, 42), 7).unwrap(), Some(42));
        assert_eq!(resume_at(&token(8, 42), 7).unwrap(), None, "another epoch");
        for bad in ["x", "7", "7-", "-1", "zz-1", "7-1.5"] {
            let err = resume_at(bad, 7).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad}");
        }
    }

    async fn next(stream: &mut WatchAllStream) -> Option<Result<WatchAllResponse, Status>> {
        use futures_util::StreamExt;
        tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
            .await
            .expect("the stream neither sent nor ended")
    }

    /// At the drain a WatchAll stream sends the changes it has not sent, then
    /// UNAVAILABLE; one opened during the drain gets its snapshot, then UNAVAILABLE.
    #[tokio::test]
    async fn the_drain_ends_watch_all_after_what_came_before() {
        let registry = HealthRegistry::new();
        let service = StatusesService::new(registry.clone());
        let mut open = WatchAllStream::new(&service, None);
        assert!(next(&mut open).await.unwrap().unwrap().synced);
        registry.shutdown();
        registry.end_streams();
        let last = next(&mut open).await.unwrap().unwrap();
        assert_eq!(
            last.statuses,
            vec![entry("", ServingStatus::NotServing)],
            "the shutdown's change first"
        );
        let end = next(&mut open).await.unwrap().unwrap_err();
        assert_eq!(end.code(), tonic::Code::Unavailable);
        assert!(next(&mut open).await.is_none());

        let mut late = WatchAllStream::new(&service, None);
        let snapshot = next(&mut late).await.unwrap().unwrap();
        assert_eq!(
            snapshot.statuses,
            vec![entry("", ServingStatus::NotServing)]
        );
        let end = next(&mut late).await.unwrap().unwrap_err();
        assert_eq!(end.code(), tonic::Code::Unavailable);
    }
}
