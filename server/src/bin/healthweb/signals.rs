//! Process signals: SIGTERM or SIGINT (ctrl-c) start the drain, SIGHUP reloads
//! the config.
//!
//! Handlers are installed before the server announces its address, so a signal
//! sent the moment it is up is handled, never the default action (which kills).
//! healthweb runs where probes run, on Unix.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGTERM and SIGINT, caught.
pub struct Terminate {
    interrupt: Signal,
    terminate: Signal,
}

impl Terminate {
    /// Catches both from now on.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Completes on the first of them.
    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// SIGHUP, caught.
pub struct Hangup(Signal);

impl Hangup {
    /// Catches it from now on.
    pub fn install() -> std::io::Result<Self> {
        signal(SignalKind::hangup()).map(Self)
    }

    /// Calls `reload` on every SIGHUP, forever.
    pub async fn on_each(mut self, mut reload: impl FnMut()) {
        while self.0.recv().await.is_some() {
            reload();
        }
    }
}
