//! A [`Transport`] that answers from a script, for the core's unit tests (Watch,
//! WatchAll, History): each method's answers in order, and every call recorded.
//!
//! A method never scripted panics when called (the code under test called what it
//! should not); one whose answers ran out waits forever, as a quiet server would,
//! so a test on tokio's paused clock ends by its own timeout.

use std::{
    cell::RefCell,
    collections::{HashMap, VecDeque},
};

use crate::{Error, MessageStream, Transport, core::Call};

/// One streaming call's answer: refused with an error, or these encoded messages then
/// this ending (`None`: the stream stays open and quiet).
pub type StreamScript = Result<(Vec<Vec<u8>>, Option<Result<(), Error>>), Error>;

/// Each method's answers, taken in order.
type Answers<A> = RefCell<HashMap<&'static str, VecDeque<A>>>;

/// The scripted transport.
#[derive(Default)]
pub struct Scripted {
    unary: Answers<Result<Vec<u8>, Error>>,
    streams: Answers<StreamScript>,
    /// Every call so far: its method and encoded request.
    pub calls: RefCell<Vec<(&'static str, Vec<u8>)>>,
}

impl Scripted {
    /// Adds answers (encoded replies or errors) to unary calls of `method`.
    pub fn answer(
        &self,
        method: &'static str,
        answers: impl IntoIterator<Item = Result<Vec<u8>, Error>>,
    ) {
        script(&self.unary, method, answers);
    }

    /// Adds answers to server-streaming calls of `method`.
    pub fn stream(&self, method: &'static str, answers: impl IntoIterator<Item = StreamScript>) {
        script(&self.streams, method, answers);
    }

    /// The encoded requests of the calls of `method` so far.
    pub fn requests(&self, method: &str) -> Vec<Vec<u8>> {
        let calls = self.calls.borrow();
        calls
            .iter()
            .filter(|(m, _)| *m == method)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Records the call, then answers it from `answers` (or never, once they ran out).
    async fn call<A>(&self, answers: &Answers<A>, method: &'static str, request: Vec<u8>) -> A {
        self.calls.borrow_mut().push((method, request));
        let next = answers
            .borrow_mut()
            .get_mut(method)
            .unwrap_or_else(|| panic!("unexpected call {method}"))
            .pop_front();
        match next {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }
}

fn script<A>(answers: &Answers<A>, method: &'static str, more: impl IntoIterator<Item = A>) {
    answers.borrow_mut().entry(method).or_default().extend(more);
}

impl Transport for Scripted {
    type Stream = Replies;

    async fn unary(
        &self,
        method: &'static str,
        request: Vec<u8>,
        _: Call<'_>,
    ) -> Result<Vec<u8>, Error> {
        self.call(&self.unary, method, request).await
    }

    async fn server_streaming(
        &self,
        method: &'static str,
        request: Vec<u8>,
        _: Call<'_>,
    ) -> Result<Replies, Error> {
        let (messages, end) = self.call(&self.streams, method, request).await?;
        Ok(Replies(messages.into(), Some(end)))
    }
}

/// A scripted stream: its messages, then its ending (taken once read).
pub struct Replies(VecDeque<Vec<u8>>, Option<Option<Result<(), Error>>>);

impl MessageStream for Replies {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, Error> {
        match self.0.pop_front() {
            Some(message) => Ok(Some(message)),
            None => match self.1.take().expect("read past the end") {
                Some(end) => end.map(|()| None),
                None => std::future::pending().await,
            },
        }
    }
}
