//! Replicas: several healthweb processes on one PostgreSQL database
//! (`--history postgres://...`) serve one truth and share the work, with nothing
//! between them but the database.
//!
//! # Fleet-wide and per instance
//! - **Fleet-wide**: every service but `""` — monitored upstreams, what the admin
//!   API sets, the config file's services. A change made on any replica is
//!   written with its transition in one transaction, announced with
//!   `NOTIFY healthweb_status`, and every replica's registry takes it (so List,
//!   Check, Watch and the page agree everywhere). A service the config file or
//!   the monitor registers is stored only if the fleet does not know it yet;
//!   otherwise the replica takes the fleet's status.
//! - **Per instance**: `""` (the process's own health, which Kubernetes probes)
//!   and the instance's drain: on shutdown (or the admin API's `/shutdown`) this
//!   replica answers NOT_SERVING for everything, alone, and is taken out of
//!   rotation; the fleet's statuses do not change. After a resume it takes the
//!   fleet's statuses again.
//!
//! # Who probes what
//! Each `[[upstream]]` is probed by exactly one live replica, the holder of its
//! lease (`healthweb_leases`, a row with an expiry the holder renews every third
//! of `--lease-period`). Replicas spread upstreams evenly by rendezvous hashing
//! ([`assign`]) over the live ones (`healthweb_replicas`, kept alive by the same
//! heartbeat). A replica that stops cleanly gives its leases back at once and
//! says so (`NOTIFY healthweb_fleet`); one killed loses them when they expire,
//! and the others take them on their next heartbeat: within two lease periods.
//! A replica that cannot renew stops probing before its leases can expire
//! (renewal time + period - a sixth of it, by its own clock), so that two never
//! probe the same upstream.
//!
//! # Layout
//! - `assign`: who should probe what.
//! - `leases`: the heartbeat, the leases, and the monitor's tasks they allow.
//! - `sync`: LISTEN for changes and take them into the registry.

pub mod assign;
mod leases;
mod sync;

use std::{
    collections::BTreeSet,
    sync::{Arc, RwLock},
    time::Duration,
};

use healthweb_proto::pb::health_check_response::ServingStatus;
use serde::Serialize;
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use crate::{
    history::{Postgres, Recorder},
    monitor::Reports,
    registry::{HealthRegistry, Observer, Origin, Reason},
};

/// Who this replica is, and how long its leases last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSettings {
    /// The name its rows are tagged with and the page shows; `None`:
    /// [`default_name`].
    pub id: Option<String>,
    /// How long a lease lasts unless renewed (every third of it).
    pub lease_period: Duration,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        Self {
            id: None,
            lease_period: Duration::from_secs(5),
        }
    }
}

impl ReplicaSettings {
    /// The replica's name.
    pub fn name(&self) -> String {
        self.id.clone().unwrap_or_else(default_name)
    }
}

/// `HOSTNAME-PID`: unique on a machine (in Kubernetes the host name is the pod's).
pub fn default_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "healthweb".into());
    format!("{host}-{}", std::process::id())
}

/// The monitor, as the leases drive it.
pub trait Probing: Send + Sync + 'static {
    /// The upstreams this replica's config names.
    fn configured(&self) -> BTreeSet<String>;
    /// Probes exactly `upstreams` (of those configured) from now on; returns the
    /// tasks stopped, which must be awaited before their leases go.
    fn allow(&self, upstreams: BTreeSet<String>) -> Vec<JoinHandle<()>>;
}

/// What this replica knows of the fleet, for `GET /instance` and the page.
#[derive(Debug, Clone, Default)]
pub struct View(Arc<RwLock<Snapshot>>);

/// The fleet, as one replica sees it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// `--lease-period`, in milliseconds.
    pub lease_period_ms: u64,
    /// Whether this replica hears the others' changes now.
    pub connected: bool,
    /// The live replicas, with how many upstreams each probes.
    pub replicas: Vec<Peer>,
    /// The upstreams this replica probes.
    pub probing: Vec<String>,
}

/// A live replica.
#[derive(Debug, Clone, Serialize)]
pub struct Peer {
    /// Its name (`--replica-id`).
    pub replica: String,
    /// Upstreams it holds leases for.
    pub probes: usize,
}

impl View {
    /// The fleet now.
    pub fn snapshot(&self) -> Snapshot {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        change(&mut self.0.write().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Hears this instance's drain: after a resume (which sets every service
/// SERVING here), the fleet's statuses are taken again.
#[derive(Debug, Default, Clone)]
pub struct Drained(Arc<Notify>);

impl Observer for Drained {
    fn changed(&self, _: &str, _: ServingStatus, _: ServingStatus, reason: Reason<'_>) {
        if reason.origin == Origin::Drain {
            self.0.notify_one();
        }
    }
}

/// Everything the fleet's tasks work with.
pub struct Parts {
    /// The shared store.
    pub postgres: Arc<Postgres>,
    /// The statuses this replica serves.
    pub registry: HealthRegistry,
    /// What this replica changed and has not written yet.
    pub recorder: Arc<Recorder>,
    /// What the monitor saw last, here and (through the store) elsewhere.
    pub reports: Reports,
    /// What `/instance` shows.
    pub view: View,
    /// Lease period.
    pub lease_period: Duration,
    /// The registry's drain observer.
    pub drained: Drained,
    /// Services whose fleet status to read again (from the writer).
    pub reread: mpsc::UnboundedReceiver<Vec<String>>,
}

/// The fleet's running tasks.
pub struct Fleet {
    leave: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Fleet {
    /// Starts the heartbeat and leases (which drive `probing`), and the
    /// listener for the others' changes.
    pub fn start(parts: Parts, probing: Arc<dyn Probing>) -> Self {
        let leave = CancellationToken::new();
        let wake = Arc::new(Notify::new());
        parts.view.update(|s| {
            s.lease_period_ms = parts.lease_period.as_millis() as u64;
        });
        let leases = leases::Leases::new(&parts, probing, wake.clone());
        let sync = sync::Sync {
            postgres: parts.postgres,
            registry: parts.registry,
            recorder: parts.recorder,
            view: parts.view,
            wake_leases: wake,
            drained: parts.drained.0,
            reread: parts.reread,
        };
        let tasks = vec![
            tokio::spawn(leases.run(leave.clone())),
            tokio::spawn(sync.run(leave.clone())),
        ];
        Self { leave, tasks }
    }

    /// Starts leaving: the leases go back at once (the probes stop first), and
    /// the fleet is told. [`Fleet::stop`] waits for it.
    pub fn leave(&self) {
        self.leave.cancel();
    }

    /// Leaves, and waits until the leases are given back.
    pub async fn stop(self) {
        self.leave.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Before the server listens: waits (at most `timeout`) until what this replica
/// registered is written, then takes every fleet-wide status the fleet has, so
/// that a new replica answers with the fleet's statuses from its first Check.
pub async fn settle(
    postgres: &Postgres,
    registry: &HealthRegistry,
    recorder: &Recorder,
    timeout: Duration,
) {
    let settled = async {
        while recorder.has_shared() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let client = postgres.client().await?;
        sync::adopt(&client, postgres, registry, recorder, None).await
    };
    match tokio::time::timeout(timeout, settled).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "the fleet's statuses are not known yet"),
        Err(_) => tracing::warn!("the fleet's statuses are not known yet: the database is slow"),
    }
}
