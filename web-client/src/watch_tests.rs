//! The watch loop against a scripted transport, on tokio's paused clock: reconnects,
//! backoff resets, the fall back to polling, and the connection states they report.

use std::{cell::RefCell, collections::VecDeque, time::Duration};

use healthweb_proto::pb::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use tonic::Code;

use super::*;
use crate::{Options, core::Call};

/// One scripted Watch call: refused with an error, or these messages then this ending.
type WatchScript = Result<(Vec<ServingStatus>, Result<(), Error>), Error>;

#[derive(Default)]
struct Scripted {
    watches: RefCell<VecDeque<WatchScript>>,
    checks: RefCell<VecDeque<Result<ServingStatus, Error>>>,
}

struct ScriptedStream(VecDeque<ServingStatus>, Option<Result<(), Error>>);

impl Transport for Scripted {
    type Watch = ScriptedStream;

    async fn check(
        &self,
        _: HealthCheckRequest,
        _: Call<'_>,
    ) -> Result<HealthCheckResponse, Error> {
        let next = self.checks.borrow_mut().pop_front();
        match next {
            Some(answer) => answer.map(|s| HealthCheckResponse { status: s as i32 }),
            None => std::future::pending().await,
        }
    }

    async fn list(&self, _: HealthListRequest, _: Call<'_>) -> Result<HealthListResponse, Error> {
        unreachable!("watch never lists")
    }

    async fn watch(&self, _: HealthCheckRequest, _: Call<'_>) -> Result<ScriptedStream, Error> {
        let next = self.watches.borrow_mut().pop_front();
        match next {
            Some(script) => {
                script.map(|(messages, end)| ScriptedStream(messages.into(), Some(end)))
            }
            None => std::future::pending().await,
        }
    }
}

impl WatchStream for ScriptedStream {
    async fn message(&mut self) -> Result<Option<HealthCheckResponse>, Error> {
        match self.0.pop_front() {
            Some(s) => Ok(Some(HealthCheckResponse { status: s as i32 })),
            None => self.1.take().expect("read past the end").map(|()| None),
        }
    }
}

fn unavailable() -> Error {
    Error::new(Code::Unavailable, "gone")
}

/// Runs the watch until the script runs out; returns `(status, state, at)` per update.
async fn run(transport: Scripted) -> Vec<(ServingStatus, ConnState, Duration)> {
    let client = Client::new(transport, Options::default()).unwrap();
    let start = tokio::time::Instant::now();
    let mut seen = Vec::new();
    let watch = client.watch("svc", |u| seen.push((u.status, u.state, start.elapsed())));
    let _ = tokio::time::timeout(Duration::from_secs(600), watch).await;
    seen
}

#[tokio::test(start_paused = true)]
async fn reconnects_with_backoff_reset_by_a_message() {
    use ServingStatus::*;
    let t = Scripted::default();
    t.watches.borrow_mut().extend([
        Ok((vec![Serving], Err(unavailable()))),
        Err(unavailable()),
        Err(unavailable()),
        Ok((vec![NotServing], Ok(()))),
        Ok((vec![Serving], Err(unavailable()))),
    ]);
    let seen = run(t).await;
    let states: Vec<_> = seen.iter().map(|(s, c, _)| (*s, *c)).collect();
    use ConnState::*;
    assert_eq!(
        states,
        [
            (Serving, Live),
            (Serving, Reconnecting),
            (Serving, Reconnecting),
            (Serving, Reconnecting),
            (NotServing, Live),
            (NotServing, Reconnecting), // an OK ending is retried too
            (Serving, Live),
            (Serving, Reconnecting),
        ]
    );
    // Backoff 0.5 s, 0.8 s, 1.28 s (each +-20%), then back to 0.5 s after a message.
    let gap = |i: usize| (seen[i + 1].2 - seen[i].2).as_millis();
    assert!((400..=600).contains(&gap(1)), "{}", gap(1));
    assert!((640..=960).contains(&gap(2)), "{}", gap(2));
    assert!(
        (400..=600).contains(&gap(5)),
        "reset after a message: {}",
        gap(5)
    );
}

#[tokio::test(start_paused = true)]
async fn turns_down_after_five_failures() {
    let t = Scripted::default();
    t.watches
        .borrow_mut()
        .extend((0..6).map(|_| Err(unavailable())));
    let states: Vec<_> = run(t).await.into_iter().map(|(_, c, _)| c).collect();
    use ConnState::*;
    assert_eq!(
        states,
        [
            Reconnecting,
            Reconnecting,
            Reconnecting,
            Reconnecting,
            Down,
            Down
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn unimplemented_falls_back_to_polling_check() {
    use ServingStatus::*;
    let t = Scripted::default();
    t.watches
        .borrow_mut()
        .push_back(Err(Error::new(Code::Unimplemented, "no Watch")));
    t.checks.borrow_mut().extend([
        Ok(Serving),
        Ok(Serving), // unchanged: not reported again
        Err(Error::new(Code::NotFound, "removed")),
        Err(unavailable()),
        Ok(NotServing),
    ]);
    let seen = run(t).await;
    let states: Vec<_> = seen.iter().map(|(s, c, _)| (*s, *c)).collect();
    use ConnState::*;
    assert_eq!(
        states,
        [
            (Serving, Polling),
            (ServiceUnknown, Polling),
            (ServiceUnknown, Reconnecting),
            (NotServing, Polling),
        ]
    );
    assert_eq!(
        seen[1].2,
        POLL_INTERVAL * 2,
        "Check is polled every POLL_INTERVAL"
    );
}
