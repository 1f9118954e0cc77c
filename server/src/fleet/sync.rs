//! The others' changes, taken into this replica's registry: a connection of its
//! own LISTENs on `healthweb_status` (the names of the services that changed)
//! and `healthweb_fleet` (replicas came, went, or gave leases back). A
//! notification is a doorbell, the table the truth: the services it names are
//! read back, so a late or repeated notification changes nothing, and after a
//! reconnect every status is read again. What this replica changed and has not
//! written yet stays as it is until it is written, and is read again then (the
//! fleet may have moved on meanwhile).
//!
//! LISTEN/NOTIFY, not polling: a change reaches every replica in one round trip
//! after its commit, and an idle fleet costs nothing. Every
//! [`RESYNC_EVERY`] the whole table is read anyway, which also proves the
//! connection alive.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use healthweb_client::backoff::jitter;
use healthweb_proto::{history::Cause, pb::health_check_response::ServingStatus};
use tokio::sync::{Notify, mpsc};
use tokio_postgres::Notification;
use tokio_util::sync::CancellationToken;

use super::View;
use crate::{
    history::{
        Postgres, Recorder, StoreError,
        postgres::{FLEET_CHANNEL, STATUS_CHANNEL},
    },
    registry::{HealthRegistry, Origin, Reason},
};

/// Every fleet-wide status is read again this often.
const RESYNC_EVERY: Duration = Duration::from_secs(10);

/// Reconnect backoff: from the first to the last, doubling.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_LAST: Duration = Duration::from_secs(10);

/// The listener's state.
pub(super) struct Sync {
    pub(super) postgres: Arc<Postgres>,
    pub(super) registry: HealthRegistry,
    pub(super) recorder: Arc<Recorder>,
    pub(super) view: View,
    /// Rung when replicas come, go or give leases back.
    pub(super) wake_leases: Arc<Notify>,
    /// Rung when this instance's drain changed statuses.
    pub(super) drained: Arc<Notify>,
    pub(super) reread: mpsc::UnboundedReceiver<Vec<String>>,
}

/// What a burst of notifications asks for.
#[derive(Default)]
struct Heard {
    services: BTreeSet<String>,
    all: bool,
    fleet: bool,
}

impl Heard {
    fn note(&mut self, notification: &Notification) {
        if notification.channel() == FLEET_CHANNEL {
            self.fleet = true;
            return;
        }
        for name in notification.payload().split('\n') {
            if name == "*" {
                self.all = true;
            } else {
                self.services.insert(name.to_owned());
            }
        }
    }
}

impl Sync {
    pub(super) async fn run(mut self, stop: CancellationToken) {
        let mut retry = RETRY_FIRST;
        let mut away_said = false;
        loop {
            let listening = tokio::select! {
                listening = self.postgres.listen(&[STATUS_CHANNEL, FLEET_CHANNEL]) => listening,
                () = stop.cancelled() => return,
            };
            let error = match listening {
                Ok((client, notifications)) => {
                    retry = RETRY_FIRST;
                    let error = self
                        .follow(&client, notifications, &stop, &mut away_said)
                        .await;
                    let Some(error) = error else { return };
                    error
                }
                Err(error) => error,
            };
            self.view.update(|s| s.connected = false);
            if !std::mem::replace(&mut away_said, true) {
                tracing::warn!(
                    %error,
                    "cannot hear the other replicas' changes; this replica keeps serving \
                     what it knows and reconnects"
                );
            }
            tokio::select! {
                () = tokio::time::sleep(jitter(retry, 0.2)) => {}
                () = stop.cancelled() => return,
            }
            retry = (retry * 2).min(RETRY_LAST);
        }
    }

    /// Follows one connection until it fails (the error) or the replica stops.
    async fn follow(
        &mut self,
        client: &tokio_postgres::Client,
        mut notifications: mpsc::UnboundedReceiver<Notification>,
        stop: &CancellationToken,
        away_said: &mut bool,
    ) -> Option<StoreError> {
        // Whatever was missed while not listening.
        if let Err(error) = self.adopt(client, None).await {
            return Some(error);
        }
        self.view.update(|s| s.connected = true);
        if std::mem::replace(away_said, false) {
            tracing::warn!("hearing the other replicas' changes again");
        }
        self.wake_leases.notify_one();
        let mut resync = tokio::time::interval(RESYNC_EVERY);
        resync.reset();
        loop {
            let result = tokio::select! {
                note = notifications.recv() => {
                    let Some(note) = note else {
                        return Some(StoreError::Unreachable(
                            "the listening connection closed".into(),
                        ));
                    };
                    let mut heard = Heard::default();
                    heard.note(&note);
                    while let Ok(note) = notifications.try_recv() {
                        heard.note(&note);
                    }
                    if heard.fleet {
                        self.wake_leases.notify_one();
                    }
                    if heard.all {
                        self.adopt(client, None).await
                    } else if !heard.services.is_empty() {
                        let names: Vec<String> = heard.services.into_iter().collect();
                        self.adopt(client, Some(&names)).await
                    } else {
                        Ok(())
                    }
                }
                Some(names) = self.reread.recv() => self.adopt(client, Some(&names)).await,
                () = self.drained.notified() => self.adopt(client, None).await,
                _ = resync.tick() => self.adopt(client, None).await,
                () = stop.cancelled() => return None,
            };
            if let Err(error) = result {
                return Some(error);
            }
        }
    }

    async fn adopt(
        &self,
        client: &tokio_postgres::Client,
        services: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let adopted = adopt(
            client,
            &self.postgres,
            &self.registry,
            &self.recorder,
            services,
        );
        tokio::time::timeout(self.postgres.timeout(), adopted)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unreachable(format!(
                    "{}: reading the fleet's statuses timed out",
                    crate::history::Store::describe(&*self.postgres)
                )))
            })
    }
}

/// Reads the fleet's statuses of `services` (all, for `None`) and takes each
/// into `registry`, but for those this replica changed and has not written yet
/// (read again once written).
pub(super) async fn adopt(
    client: &tokio_postgres::Client,
    postgres: &Postgres,
    registry: &HealthRegistry,
    recorder: &Recorder,
    services: Option<&[String]>,
) -> Result<(), StoreError> {
    let query = "SELECT service, status, cause, detail FROM healthweb_statuses";
    let rows = match services {
        None => client.query(query, &[]).await,
        Some(names) => {
            client
                .query(&format!("{query} WHERE service = ANY($1)"), &[&names])
                .await
        }
    }
    .map_err(|e| postgres.error(&e))?;
    for row in rows {
        let service: &str = row.get(0);
        if service.is_empty() || recorder.defers(service) {
            continue;
        }
        let status = ServingStatus::try_from(row.get::<_, i32>(1)).unwrap_or_default();
        let reason = Reason {
            cause: Cause::try_from(row.get::<_, i32>(2)).unwrap_or_default(),
            detail: row.get(3),
            origin: Origin::Fleet,
        };
        // Refused while this replica is shut down (it stays NOT_SERVING), and a
        // removal of what is not here is nothing to do.
        let _ = if status == ServingStatus::ServiceUnknown {
            registry.remove_because(service, reason)
        } else {
            registry.set_because(service, status, reason)
        };
    }
    Ok(())
}
