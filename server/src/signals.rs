//! Process signals: SIGTERM or ctrl-c start the drain, SIGHUP reloads the config.

/// Completes on the first ctrl-c (SIGINT) or SIGTERM.
pub async fn terminate() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only ctrl-c stops the server");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Calls `reload` on every SIGHUP, forever. Without Unix signals it never fires.
pub async fn on_hangup(mut reload: impl FnMut()) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                while hup.recv().await.is_some() {
                    reload();
                }
            }
            Err(error) => tracing::warn!(%error, "cannot listen for SIGHUP; config reload is off"),
        }
    }
    std::future::pending::<()>().await;
}
