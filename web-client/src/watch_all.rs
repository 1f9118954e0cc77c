//! WatchAll (`healthweb.v1.Statuses`): every service on one stream, kept open as
//! [`crate::watch`] keeps a Watch: any ending is retried with exponential
//! backoff (reset once a message arrives), and each attempt must bring its first
//! message within the deadline. A reconnect sends the last `resume_token` seen,
//! so the server answers with only the changes missed while it still has them,
//! and with a new snapshot (`reset`) when it does not.
//!
//! The messages reach the callback encoded: the browser turns them straight into
//! JavaScript objects (`js_replies`), a native caller decodes
//! `healthweb_proto::statuses::WatchAllResponse`. The core reads only the token.

use healthweb_proto::statuses::WatchAllRequest;
use prost::Message;

use std::ops::ControlFlow;

use crate::{Client, ConnState, Error, Transport, core, watch::Follower};

/// One report to [`Client::watch_all`]'s callback: a message, or a failed attempt.
#[derive(Debug)]
pub struct AllUpdate {
    /// An encoded `WatchAllResponse`, or `None` when an attempt failed.
    pub message: Option<Vec<u8>>,
    /// How fresh the statuses held are.
    pub state: ConnState,
    /// Why the last attempt failed, when the state says it did.
    pub error: Option<Error>,
}

/// The one field of a `WatchAllResponse` the core needs (prost skips the rest).
#[derive(Clone, PartialEq, prost::Message)]
struct Token {
    #[prost(string, tag = "4")]
    resume_token: String,
}

impl<T: Transport> Client<T> {
    /// Reports every message of the WatchAll stream to `on_update`, reconnecting
    /// and resuming forever: cancel by dropping the future.
    pub async fn watch_all(&self, on_update: impl FnMut(AllUpdate)) {
        let mut following = Following {
            token: String::new(),
            on_update,
        };
        self.follow(core::path::WATCH_ALL, &mut following).await
    }
}

/// The WatchAll stream: the last token seen, sent again on a reconnect.
struct Following<F> {
    token: String,
    on_update: F,
}

impl<F: FnMut(AllUpdate)> Follower for Following<F> {
    fn request(&self) -> Vec<u8> {
        WatchAllRequest {
            resume_token: self.token.clone(),
        }
        .encode_to_vec()
    }

    fn message(&mut self, message: Vec<u8>) -> Result<(), Error> {
        let read = core::decode::<Token>(&message)?.resume_token;
        if !read.is_empty() {
            self.token = read;
        }
        (self.on_update)(AllUpdate {
            message: Some(message),
            state: ConnState::Live,
            error: None,
        });
        Ok(())
    }

    fn ended(&mut self, state: ConnState, error: Option<Error>) -> ControlFlow<()> {
        (self.on_update)(AllUpdate {
            message: None,
            state,
            error,
        });
        ControlFlow::Continue(())
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::time::Duration;

    use healthweb_proto::statuses::WatchAllResponse;
    use tonic::Code;

    use super::*;
    use crate::{Options, scripted::Scripted};

    fn message(synced: bool, token: &str) -> WatchAllResponse {
        WatchAllResponse {
            reset: false,
            statuses: Vec::new(),
            synced,
            resume_token: token.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reconnects_resuming_from_the_last_token() {
        let gone = || Error::new(Code::Unavailable, "gone");
        let t = Scripted::default();
        let call = |messages: Vec<WatchAllResponse>| {
            let messages = messages.iter().map(Message::encode_to_vec).collect();
            Ok((messages, Some(Err(gone()))))
        };
        t.stream(
            core::path::WATCH_ALL,
            [
                call(vec![message(false, ""), message(true, "e-1")]),
                // Mid-snapshot messages carry no token: the last one holds.
                call(vec![message(false, "")]),
                call(vec![message(true, "e-5")]),
            ],
        );
        let client = Client::new(t, Options::default()).unwrap();
        let mut states = Vec::new();
        let watch = client.watch_all(|u| states.push((u.message.is_some(), u.state)));
        let _ = tokio::time::timeout(Duration::from_secs(60), watch).await;
        use ConnState::*;
        assert_eq!(
            states,
            [
                (true, Live),
                (true, Live),
                (false, Reconnecting),
                (true, Live),
                (false, Reconnecting),
                (true, Live),
                (false, Reconnecting),
            ]
        );
        let tokens: Vec<_> = (client.transport().requests(core::path::WATCH_ALL).iter())
            .map(|r| WatchAllRequest::decode(&r[..]).unwrap().resume_token)
            .collect();
        assert_eq!(tokens, ["", "e-1", "e-1", "e-5"]);
    }
}
