//! The health registry: every service's serving status, and the channels that
//! carry each change to its watchers.
//!
//! One `tokio::sync::watch` channel per service name (as tonic-health does): a
//! slow watcher only ever sees the latest status and never holds the others back.
//! A name that is watched before it is registered gets a channel holding
//! `SERVICE_UNKNOWN`; the channel is dropped again when its last watcher leaves,
//! so unknown names cost nothing once nobody asks for them.
//!
//! The API follows grpc-go's health server: [`HealthRegistry::set`],
//! [`HealthRegistry::remove`], [`HealthRegistry::shutdown`] and
//! [`HealthRegistry::resume`]; each has a `_because` twin that says who made the
//! change ([`Reason`]), for the [`Observer`]s (history, metrics) that hear of
//! every change as it is made.
//!
//! Every change also goes into a bounded [`journal`] with a number, so that one
//! stream can follow every service at once (`healthweb.v1.Statuses/WatchAll`):
//! [`HealthRegistry::snapshot`], then [`HealthRegistry::changes_since`] whenever
//! [`HealthRegistry::positions`] moves.
//!
//! When the server drains, [`HealthRegistry::end_streams`] closes every channel:
//! a watcher takes what it has not seen yet, then finds the channel closed, and
//! its stream ends (UNAVAILABLE). The streams need no drain signal of their own.

mod journal;

use std::{
    collections::{BTreeMap, HashMap},
    hash::{BuildHasher, RandomState},
    sync::{Arc, RwLock},
};

pub use healthweb_proto::history::Cause;
use healthweb_proto::pb::health_check_response::ServingStatus;
use tokio::sync::watch;

/// Who changed a status, and what they said about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason<'a> {
    /// The source of the change.
    pub cause: Cause,
    /// What it said (the monitor's answer or error), or `""`.
    pub detail: &'a str,
    /// Where the change comes from: this instance, its drain, or another replica.
    pub origin: Origin,
}

/// Where a change comes from, for the replicas that share a store: a change made
/// here is shared with the fleet (but for `""`, each instance's own); the
/// instance's own shutdown and resume stay here; a change heard from another
/// replica is only mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// Made by this instance: the config, the admin API, the monitor, a program.
    #[default]
    Here,
    /// This instance's shutdown or resume (every service at once).
    Drain,
    /// Made by another replica, heard through the shared store.
    Fleet,
}

impl Reason<'static> {
    /// A program embedding the library, through the grpc-go style methods.
    pub const PROGRAM: Self = Self::of(Cause::Program);

    /// `cause`, with nothing more to say.
    pub const fn of(cause: Cause) -> Self {
        Self {
            cause,
            detail: "",
            origin: Origin::Here,
        }
    }
}

/// Hears of every status change as the registry makes it, under its lock: keep it
/// short (count, or queue for later).
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// `service` went `from` → `to` (SERVICE_UNKNOWN: not registered) for `reason`.
    fn changed(&self, service: &str, from: ServingStatus, to: ServingStatus, reason: Reason<'_>);
}

/// Why a status change was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The registry is shut down; changes are ignored until `resume()`.
    #[error("the health server is shut down: status changes are ignored until it resumes")]
    ShutDown,
    /// `SERVICE_UNKNOWN` is what Watch reports for an absent service, never a status to set.
    #[error("SERVICE_UNKNOWN cannot be set; remove the service instead")]
    NotSettable,
    /// The whole server, `""`, is always registered.
    #[error("the whole server (service \"\") is always registered and cannot be removed")]
    ServerEntry,
    /// No such service is registered.
    #[error("unknown service {0:?}")]
    Unknown(String),
}

/// The statuses of all services, shared by the gRPC service, `/healthz`, the
/// admin API and the config loader. Cloning is cheap: clones share one registry.
#[derive(Debug, Clone)]
pub struct HealthRegistry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: RwLock<State>,
    observers: Vec<Arc<dyn Observer>>,
    /// Random, so that a journal position given out before a restart is never
    /// taken for one of this registry's.
    epoch: u64,
}

#[derive(Debug)]
struct State {
    services: HashMap<String, watch::Sender<ServingStatus>>,
    /// Tells a journal position's readers that it moved.
    positions: watch::Sender<u64>,
    shut_down: bool,
    /// [`HealthRegistry::end_streams`] was called: every receiver given out from
    /// then on is closed.
    streams_ended: bool,
    journal: journal::Journal,
}

impl State {
    /// A receiver for a stream that opens once the streams have ended: `value`,
    /// then closed.
    fn ended<T>(value: T) -> watch::Receiver<T> {
        watch::channel(value).1
    }
}

/// How many changes the journal keeps for streams that resume, by default.
pub const DEFAULT_BACKLOG: usize = 10_000;

impl Default for HealthRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthRegistry {
    /// A registry holding only the whole server, `""`, as SERVING.
    pub fn new() -> Self {
        Self::observed(Vec::new())
    }

    /// A registry whose every change `observers` hear of, starting with the whole
    /// server, `""`, registered SERVING (for [`Cause::Config`]: it is the default).
    pub fn observed(observers: Vec<Arc<dyn Observer>>) -> Self {
        Self::with_backlog(observers, DEFAULT_BACKLOG)
    }

    /// [`Self::observed`], with a journal of the last `backlog` changes.
    pub fn with_backlog(observers: Vec<Arc<dyn Observer>>, backlog: usize) -> Self {
        let registry = Self {
            inner: Arc::new(Inner {
                state: RwLock::new(State {
                    services: HashMap::new(),
                    positions: watch::Sender::new(0),
                    shut_down: false,
                    streams_ended: false,
                    journal: journal::Journal::new(backlog),
                }),
                observers,
                epoch: RandomState::new().hash_one(std::time::SystemTime::now()),
            }),
        };
        registry
            .set_because("", ServingStatus::Serving, Reason::of(Cause::Config))
            .expect("a new registry is not shut down");
        registry
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-written: every
        // write is a single insert, remove or channel send.
        self.inner.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `service` with `status`, or changes its status. Watchers hear of
    /// it only when the status differs from the one they last saw.
    pub fn set(&self, service: &str, status: ServingStatus) -> Result<(), RegistryError> {
        self.set_because(service, status, Reason::PROGRAM)
    }

    /// [`Self::set`], for `reason`.
    pub fn set_because(
        &self,
        service: &str,
        status: ServingStatus,
        reason: Reason<'_>,
    ) -> Result<(), RegistryError> {
        if status == ServingStatus::ServiceUnknown {
            return Err(RegistryError::NotSettable);
        }
        let mut state = self.write();
        if state.shut_down {
            return Err(RegistryError::ShutDown);
        }
        self.publish(&mut state, service, status, reason);
        Ok(())
    }

    /// Removes `service`: Check answers NOT_FOUND and its watchers see SERVICE_UNKNOWN.
    pub fn remove(&self, service: &str) -> Result<(), RegistryError> {
        self.remove_because(service, Reason::PROGRAM)
    }

    /// [`Self::remove`], for `reason`.
    pub fn remove_because(&self, service: &str, reason: Reason<'_>) -> Result<(), RegistryError> {
        if service.is_empty() {
            return Err(RegistryError::ServerEntry);
        }
        let mut state = self.write();
        let Some(tx) = state.services.get(service) else {
            return Err(RegistryError::Unknown(service.to_owned()));
        };
        let was = *tx.borrow();
        if was == ServingStatus::ServiceUnknown {
            return Err(RegistryError::Unknown(service.to_owned()));
        }
        if tx.receiver_count() == 0 {
            state.services.remove(service);
        } else {
            tx.send_replace(ServingStatus::ServiceUnknown);
        }
        self.tell(
            &mut state,
            service,
            was,
            ServingStatus::ServiceUnknown,
            reason,
        );
        Ok(())
    }

    /// Sets every service NOT_SERVING and ignores later changes until [`Self::resume`].
    pub fn shutdown(&self) {
        self.shutdown_because(Reason::of(Cause::Shutdown));
    }

    /// [`Self::shutdown`], for `reason`.
    pub fn shutdown_because(&self, reason: Reason<'_>) {
        let mut state = self.write();
        state.shut_down = true;
        self.set_all_registered(&mut state, ServingStatus::NotServing, reason);
    }

    /// Sets every service SERVING and accepts changes again (grpc-go's `Resume`).
    pub fn resume(&self) {
        self.resume_because(Reason::PROGRAM);
    }

    /// [`Self::resume`], for `reason`.
    pub fn resume_because(&self, reason: Reason<'_>) {
        let mut state = self.write();
        state.shut_down = false;
        self.set_all_registered(&mut state, ServingStatus::Serving, reason);
    }

    /// Ends every Watch and WatchAll stream, at the drain: each channel is closed,
    /// so that its receivers take the change they have not seen yet, if any, and
    /// then end; a stream opened later gets the current status (or position),
    /// then the end. Statuses still change, for Check.
    pub fn end_streams(&self) {
        let mut state = self.write();
        state.streams_ended = true;
        // Replacing a sender drops the old one, which closes its channel.
        for tx in state.services.values_mut() {
            let status = *tx.borrow();
            *tx = watch::Sender::new(status);
        }
        let position = *state.positions.borrow();
        state.positions = watch::Sender::new(position);
    }

    /// Whether [`Self::shutdown`] is in force.
    pub fn is_shut_down(&self) -> bool {
        self.read().shut_down
    }

    /// The status of a registered service, `None` when it is unknown.
    pub fn check(&self, service: &str) -> Option<ServingStatus> {
        let state = self.read();
        let status = *state.services.get(service)?.borrow();
        (status != ServingStatus::ServiceUnknown).then_some(status)
    }

    /// Every registered service with its status, sorted by name.
    pub fn list(&self) -> BTreeMap<String, ServingStatus> {
        self.read()
            .services
            .iter()
            .map(|(name, tx)| (name.clone(), *tx.borrow()))
            .filter(|(_, status)| *status != ServingStatus::ServiceUnknown)
            .collect()
    }

    /// The number of registered services.
    pub fn len(&self) -> usize {
        self.read()
            .services
            .values()
            .filter(|tx| *tx.borrow() != ServingStatus::ServiceUnknown)
            .count()
    }

    /// Always false: the whole server, `""`, is always registered.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Follows `service`, registered or not. The receiver starts at the current
    /// status (SERVICE_UNKNOWN for an unknown name).
    pub fn watch(&self, service: &str) -> Watcher {
        let subscribe = |state: &State| {
            let tx = state.services.get(service);
            if state.streams_ended {
                let status = tx.map_or(ServingStatus::ServiceUnknown, |tx| *tx.borrow());
                return Some(State::ended(status));
            }
            tx.map(watch::Sender::subscribe)
        };
        // The read lock goes before the write lock is taken.
        let subscribed = subscribe(&self.read());
        let rx = subscribed.unwrap_or_else(|| {
            let mut state = self.write();
            subscribe(&state).unwrap_or_else(|| {
                state
                    .services
                    .entry(service.to_owned())
                    .or_insert_with(|| watch::Sender::new(ServingStatus::ServiceUnknown))
                    .subscribe()
            })
        });
        Watcher {
            rx,
            release: Release {
                registry: self.clone(),
                service: service.to_owned(),
            },
        }
    }

    /// How many Watch streams follow `service` right now.
    pub fn watcher_count(&self, service: &str) -> usize {
        self.read()
            .services
            .get(service)
            .map_or(0, watch::Sender::receiver_count)
    }

    /// How many Watch streams follow each name that has any, registered or not.
    pub fn watchers(&self) -> BTreeMap<String, usize> {
        self.read()
            .services
            .iter()
            .map(|(name, tx)| (name.clone(), tx.receiver_count()))
            .filter(|(_, count)| *count > 0)
            .collect()
    }

    /// How many names have a channel (registered, or watched while unknown).
    pub fn channel_count(&self) -> usize {
        self.read().services.len()
    }

    /// Every registered service with its status, sorted by name, and the journal
    /// position they stand at: [`Self::changes_since`] it is what came after.
    pub fn snapshot(&self) -> (u64, Vec<(String, ServingStatus)>) {
        let state = self.read();
        let mut services: Vec<_> = state
            .services
            .iter()
            .map(|(name, tx)| (name.clone(), *tx.borrow()))
            .filter(|(_, status)| *status != ServingStatus::ServiceUnknown)
            .collect();
        services.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        (state.journal.position(), services)
    }

    /// At most `max` changes from journal position `from` on (SERVICE_UNKNOWN:
    /// removed), oldest first, and the position after them; `None` when the
    /// journal no longer reaches back to `from` (or never reached it).
    pub fn changes_since(&self, from: u64, max: usize) -> Option<Changes> {
        self.read().journal.since(from, max)
    }

    /// The journal's position, moving with every change: what a stream following
    /// every service waits on.
    pub fn positions(&self) -> watch::Receiver<u64> {
        let state = self.read();
        if state.streams_ended {
            return State::ended(*state.positions.borrow());
        }
        state.positions.subscribe()
    }

    /// How many streams follow every service ([`Self::positions`]) right now.
    pub fn followers(&self) -> usize {
        self.read().positions.receiver_count()
    }

    /// This registry's own number: journal positions are its alone.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch
    }
}

/// Changes read from the journal, oldest first, and the position after them.
pub type Changes = (Vec<(Arc<str>, ServingStatus)>, u64);

impl HealthRegistry {
    fn publish(&self, state: &mut State, service: &str, status: ServingStatus, reason: Reason<'_>) {
        let was = match state.services.get(service) {
            Some(tx) => {
                let mut was = status;
                tx.send_if_modified(|current| {
                    was = *current;
                    *current = status;
                    was != status
                });
                was
            }
            None => {
                state
                    .services
                    .insert(service.to_owned(), watch::Sender::new(status));
                ServingStatus::ServiceUnknown
            }
        };
        if was != status {
            self.tell(state, service, was, status, reason);
        }
    }

    fn tell(
        &self,
        state: &mut State,
        service: &str,
        from: ServingStatus,
        to: ServingStatus,
        reason: Reason<'_>,
    ) {
        state.journal.push(service, to);
        let position = state.journal.position();
        state.positions.send_replace(position);
        for observer in &self.inner.observers {
            observer.changed(service, from, to, reason);
        }
    }

    fn set_all_registered(&self, state: &mut State, status: ServingStatus, reason: Reason<'_>) {
        let reason = Reason {
            origin: Origin::Drain,
            ..reason
        };
        let names: Vec<String> = state
            .services
            .iter()
            .filter(|(_, tx)| *tx.borrow() != ServingStatus::ServiceUnknown)
            .map(|(name, _)| name.clone())
            .collect();
        for name in names {
            self.publish(state, &name, status, reason);
        }
    }
}

/// One watcher's view of a service. Dropping it releases the channel of a name
/// that is not registered and has no other watcher.
#[derive(Debug)]
pub struct Watcher {
    // Dropped first: the release below counts the receivers that are left.
    rx: watch::Receiver<ServingStatus>,
    release: Release,
}

impl Watcher {
    /// The receiver of status changes.
    pub fn receiver(&mut self) -> &mut watch::Receiver<ServingStatus> {
        &mut self.rx
    }

    /// The receiver, and what releases the channel once the receiver is gone:
    /// drop the receiver first.
    pub fn into_parts(self) -> (watch::Receiver<ServingStatus>, Release) {
        (self.rx, self.release)
    }
}

/// Releases the channel of a name that is not registered, once no receiver is left.
#[derive(Debug)]
pub struct Release {
    registry: HealthRegistry,
    service: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        let mut state = self.registry.write();
        if let Some(tx) = state.services.get(&self.service)
            && tx.receiver_count() == 0
            && *tx.borrow() == ServingStatus::ServiceUnknown
        {
            state.services.remove(&self.service);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_server_is_always_registered() {
        let registry = HealthRegistry::new();
        assert_eq!(registry.check(""), Some(ServingStatus::Serving));
        assert_eq!(registry.remove(""), Err(RegistryError::ServerEntry));
    }

    #[test]
    fn shutdown_ignores_sets_until_resume() {
        let registry = HealthRegistry::new();
        registry.set("a", ServingStatus::Serving).unwrap();
        registry.shutdown();
        assert_eq!(registry.check("a"), Some(ServingStatus::NotServing));
        assert_eq!(
            registry.set("a", ServingStatus::Serving),
            Err(RegistryError::ShutDown)
        );
        registry.resume();
        assert_eq!(registry.check("a"), Some(ServingStatus::Serving));
        assert_eq!(registry.check(""), Some(ServingStatus::Serving));
    }

    #[test]
    fn unknown_watch_channels_go_with_their_last_watcher() {
        let registry = HealthRegistry::new();
        let first = registry.watch("later");
        let second = registry.watch("later");
        assert_eq!(registry.channel_count(), 2);
        assert_eq!(registry.check("later"), None);
        assert_eq!(registry.watchers(), BTreeMap::from([("later".into(), 2)]));
        drop(first);
        assert_eq!(registry.channel_count(), 2);
        drop(second);
        assert_eq!(registry.channel_count(), 1);
    }

    /// Whether `rx` has a change (`Ok`) or is closed (`Err`); neither within 5 s
    /// fails the test rather than hanging it.
    async fn changed<T>(rx: &mut watch::Receiver<T>) -> Result<(), watch::error::RecvError> {
        tokio::time::timeout(std::time::Duration::from_secs(5), rx.changed())
            .await
            .expect("the channel neither changed nor closed")
    }

    #[tokio::test]
    async fn ending_the_streams_closes_every_channel_after_its_last_change() {
        let registry = HealthRegistry::new();
        registry.set("a", ServingStatus::Serving).unwrap();
        let mut seen = registry.watch("a");
        seen.receiver().borrow_and_update();
        let mut behind = registry.watch("a");
        behind.receiver().borrow_and_update();
        let mut positions = registry.positions();
        registry.set("a", ServingStatus::NotServing).unwrap();
        seen.receiver().borrow_and_update();
        registry.end_streams();
        // Nothing unseen: closed at once.
        assert!(changed(seen.receiver()).await.is_err());
        // The change it had not seen comes first, then the end.
        assert!(changed(behind.receiver()).await.is_ok());
        assert_eq!(
            *behind.receiver().borrow_and_update(),
            ServingStatus::NotServing
        );
        assert!(changed(behind.receiver()).await.is_err());
        assert!(changed(&mut positions).await.is_ok());
        assert!(changed(&mut positions).await.is_err());
        // Opened later: the status as it is, then closed; statuses still change.
        let mut late = registry.watch("a");
        assert_eq!(*late.receiver().borrow(), ServingStatus::NotServing);
        assert!(changed(late.receiver()).await.is_err());
        assert!(changed(&mut registry.positions()).await.is_err());
        registry.set("a", ServingStatus::Serving).unwrap();
        assert_eq!(registry.check("a"), Some(ServingStatus::Serving));
    }

    #[test]
    fn removed_service_is_unknown_to_its_watchers() {
        let registry = HealthRegistry::new();
        registry.set("a", ServingStatus::Serving).unwrap();
        let mut watcher = registry.watch("a");
        registry.remove("a").unwrap();
        assert_eq!(
            *watcher.receiver().borrow_and_update(),
            ServingStatus::ServiceUnknown
        );
        assert_eq!(registry.check("a"), None);
        assert!(!registry.list().contains_key("a"));
        assert_eq!(
            registry.remove("a"),
            Err(RegistryError::Unknown("a".into()))
        );
    }

    #[test]
    fn setting_the_same_status_notifies_nobody() {
        let registry = HealthRegistry::new();
        registry.set("a", ServingStatus::Serving).unwrap();
        let mut watcher = registry.watch("a");
        watcher.receiver().borrow_and_update();
        registry.set("a", ServingStatus::Serving).unwrap();
        assert!(!watcher.receiver().has_changed().unwrap());
        registry.set("a", ServingStatus::NotServing).unwrap();
        assert!(watcher.receiver().has_changed().unwrap());
    }
}
