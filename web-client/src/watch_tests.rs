//! The watch loop against a scripted transport, on tokio's paused clock: reconnects,
//! backoff resets, the fall back to polling, and the connection states they report.

use std::time::Duration;

use healthweb_proto::pb::HealthCheckResponse;
use prost::Message;
use tonic::Code;

use super::*;
use crate::{
    Options,
    core::path,
    scripted::{Scripted, StreamScript},
};

/// One scripted Watch call: refused with an error, or these statuses then this ending
/// (`None`: the stream stays open and quiet).
type WatchScript = Result<(Vec<ServingStatus>, Option<Result<(), Error>>), Error>;

/// A transport whose Watch calls answer `watches` in order, and whose Check calls
/// answer `checks`.
fn scripted(
    watches: impl IntoIterator<Item = WatchScript>,
    checks: impl IntoIterator<Item = Result<ServingStatus, Error>>,
) -> Scripted {
    let t = Scripted::default();
    let watches = watches.into_iter().map(|script| -> StreamScript {
        script.map(|(statuses, end)| (statuses.into_iter().map(encoded).collect(), end))
    });
    t.stream(path::WATCH, watches);
    t.answer(path::CHECK, checks.into_iter().map(|c| c.map(encoded)));
    t
}

fn encoded(status: ServingStatus) -> Vec<u8> {
    HealthCheckResponse {
        status: status as i32,
    }
    .encode_to_vec()
}

fn unavailable() -> Error {
    Error::new(Code::Unavailable, "gone")
}

/// Runs the watch until the script runs out; returns `(status, state, at)` per update.
async fn run(transport: Scripted) -> Vec<(ServingStatus, ConnState, Duration)> {
    run_with(transport, Options::default())
        .await
        .into_iter()
        .map(|(status, state, _, at)| (status, state, at))
        .collect()
}

/// As [`run`], with `options`, and with the code of each update's error.
async fn run_with(
    transport: Scripted,
    options: Options,
) -> Vec<(ServingStatus, ConnState, Option<Code>, Duration)> {
    let client = Client::new(transport, options).unwrap();
    let start = tokio::time::Instant::now();
    let mut seen = Vec::new();
    let watch = client.watch("svc", |u| {
        let code = u.error.map(|e| e.code());
        seen.push((u.status, u.state, code, start.elapsed()));
    });
    let _ = tokio::time::timeout(Duration::from_secs(600), watch).await;
    seen
}

#[tokio::test(start_paused = true)]
async fn reconnects_with_backoff_reset_by_a_message() {
    use ServingStatus::*;
    let t = scripted(
        [
            Ok((vec![Serving], Some(Err(unavailable())))),
            Err(unavailable()),
            Err(unavailable()),
            Ok((vec![NotServing], Some(Ok(())))),
            Ok((vec![Serving], Some(Err(unavailable())))),
        ],
        [],
    );
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
    let t = scripted((0..6).map(|_| Err(unavailable())), []);
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
    let t = scripted(
        [Err(Error::new(Code::Unimplemented, "no Watch"))],
        [
            Ok(Serving),
            Ok(Serving), // unchanged: not reported again
            Err(Error::new(Code::NotFound, "removed")),
            Err(unavailable()),
            Ok(NotServing),
        ],
    );
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

#[tokio::test(start_paused = true)]
async fn each_attempt_must_bring_its_first_message_within_the_deadline() {
    use ServingStatus::*;
    // A server that accepts the call and sends nothing, then one that answers and
    // stays quiet far longer than the deadline: only the first is a failure.
    let t = scripted([Ok((vec![], None)), Ok((vec![Serving], None))], []);
    let options = Options {
        timeout: Some(Duration::from_secs(1)),
        ..Options::default()
    };
    let seen = run_with(t, options).await;
    use ConnState::*;
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (status, state, code, at) = seen[0];
    assert_eq!(
        (status, state, code),
        (Unknown, Reconnecting, Some(Code::DeadlineExceeded))
    );
    assert_eq!(at, Duration::from_secs(1), "given up at the deadline");
    assert_eq!((seen[1].0, seen[1].1, seen[1].2), (Serving, Live, None));
}
