//! Upstream monitoring: one task per `[[upstream]]`, each turning what it sees
//! into a service status in healthweb's own registry.
//!
//! - Watch first (a change arrives at once and is taken at once); a Watch that
//!   ends with UNIMPLEMENTED switches the upstream to polling Check for good.
//! - Thresholds count consecutive probe results (polls, errors, failed
//!   reconnects), as Kubernetes and Envoy count them.
//! - Each upstream has its own task, deadline and jittered interval, so a
//!   hanging one never delays another; upstreams on one address share its
//!   connections ([`pool`]: a Watch stream each on one HTTP/2 connection).
//! - [`Monitor::apply`] adds, changes and removes upstreams on reload without
//!   touching the others; a removed one leaves the registry.
//!
//! What each task saw last is kept in [`Reports`], served as JSON at `/upstreams`.
//!
//! # Layout
//! - `task`: one upstream's loop: Watch, poll, or plain HTTP.
//! - `thresholds`: the consecutive-result counters.
//! - `http`: the plain HTTP probe.
//! - `pool`: the connections the upstreams on one address share.

mod http;
pub mod pool;
mod task;
mod thresholds;

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, RwLock},
    time::Duration,
};

use healthweb_proto::pb::health_check_response::ServingStatus;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

pub use thresholds::Thresholds;

use crate::{
    registry::{Cause, HealthRegistry, Reason},
    upstream::{UpstreamConfig, Via},
};

/// How the monitor follows an upstream right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A Watch stream is open.
    Watch,
    /// Check (or an HTTP GET) every interval.
    Poll,
}

/// What the monitor saw last of one upstream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The upstream's address.
    pub target: String,
    /// How it is asked.
    pub protocol: Via,
    /// `watch` while a Watch stream is open, `poll` otherwise.
    pub mode: Mode,
    /// The status healthweb shows for it.
    pub status: Cow<'static, str>,
    /// The replica that probes it, when replicas share the work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probed_by: Option<String>,
    /// What the upstream itself answered last (`SERVING`, `HTTP 503`...), if anything.
    pub answer: Option<String>,
    /// The last error, if the last probe failed.
    pub error: Option<String>,
    /// How long the last probe took, in milliseconds.
    pub latency_ms: Option<f64>,
    /// When the last probe ended (RFC 3339).
    pub probed_at: Option<String>,
    /// When `status` last changed (RFC 3339).
    pub changed_at: Option<String>,
    /// Consecutive successful probes.
    pub successes: u32,
    /// Consecutive failed probes.
    pub failures: u32,
}

/// The latest [`Report`] of every upstream, shared with the routes.
pub type Reports = Arc<RwLock<BTreeMap<String, Report>>>;

/// Hears how long every probe took (history keeps a summary a minute, metrics a
/// histogram).
pub trait ProbeObserver: Send + Sync + std::fmt::Debug {
    /// One probe of `upstream` took `latency`.
    fn probed(&self, upstream: &str, latency: Duration);
}

/// The observers of every probe, shared by the upstream tasks.
pub type ProbeObservers = Arc<[Arc<dyn ProbeObserver>]>;

/// The running upstream tasks.
#[derive(Debug)]
pub struct Monitor {
    registry: HealthRegistry,
    reports: Reports,
    observers: ProbeObservers,
    /// The upstreams the config names.
    /// Shared with the task that runs each: one copy a monitored upstream.
    configured: HashMap<String, Arc<UpstreamConfig>>,
    /// Which of them this instance may probe: all (`None`), or those whose
    /// leases it holds, when replicas share the work.
    allowed: Option<BTreeSet<String>>,
    running: HashMap<String, (Arc<UpstreamConfig>, JoinHandle<()>)>,
    /// The replica that probes, named in its reports and its User-Agent.
    replica: Option<String>,
    /// The connections, shared by the upstreams on one address.
    pool: pool::Pool,
}

impl Monitor {
    /// A monitor with no upstreams yet.
    pub fn new(registry: HealthRegistry) -> Self {
        Self::observed(registry, Vec::new())
    }

    /// A monitor whose every probe `observers` hear of.
    pub fn observed(registry: HealthRegistry, observers: Vec<Arc<dyn ProbeObserver>>) -> Self {
        Self {
            registry,
            reports: Reports::default(),
            observers: observers.into(),
            configured: HashMap::new(),
            allowed: None,
            running: HashMap::new(),
            replica: None,
            pool: pool::Pool::new(pool::DEFAULT_PER_CONNECTION),
        }
    }

    /// Lets at most `upstreams` share one connection (an HTTP/2 stream each); more
    /// on one address open another.
    pub fn upstreams_per_connection(mut self, upstreams: usize) -> Self {
        self.pool = pool::Pool::new(upstreams);
        self
    }

    /// How many connections the upstream tasks hold to their upstreams, shared.
    pub async fn connections(&self) -> usize {
        self.pool.connections().await
    }

    /// A monitor of the replica `replica`, which probes an upstream only once
    /// [`Monitor::allow`] lets it (it holds the upstream's lease).
    pub fn shared(mut self, replica: String) -> Self {
        self.allowed = Some(BTreeSet::new());
        self.replica = Some(replica);
        self
    }

    /// The upstreams the config names.
    pub fn configured(&self) -> BTreeSet<String> {
        self.configured.keys().cloned().collect()
    }

    /// Probes exactly `upstreams` (of those configured) from now on; returns the
    /// tasks stopped, to await before their leases go to another replica.
    pub fn allow(&mut self, upstreams: BTreeSet<String>) -> Vec<JoinHandle<()>> {
        self.allowed = Some(upstreams);
        self.reconcile()
    }

    /// The reports, for `/upstreams`.
    pub fn reports(&self) -> Reports {
        self.reports.clone()
    }

    /// How many upstream tasks run.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether no upstream is monitored.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Brings the running tasks in line with `upstreams`: new ones are
    /// registered (UNKNOWN until known) and start, changed ones restart (their
    /// status stays until the new task knows better), removed ones stop and leave
    /// the registry. Unchanged ones are not touched. With replicas, only the
    /// upstreams this one holds run.
    pub fn apply(&mut self, upstreams: &[UpstreamConfig]) {
        // An unchanged entry keeps the copy its running task already shares.
        let wanted: HashMap<String, Arc<UpstreamConfig>> = upstreams
            .iter()
            .map(|u| {
                let config = match self.configured.get(&u.name) {
                    Some(kept) if **kept == *u => Arc::clone(kept),
                    _ => Arc::new(u.clone()),
                };
                (u.name.clone(), config)
            })
            .collect();
        let gone: Vec<String> = self
            .configured
            .keys()
            .filter(|name| !wanted.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            let _ = self
                .registry
                .remove_because(&name, Reason::of(Cause::Reload));
            self.reports
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&name);
        }
        for name in wanted.keys() {
            if self.registry.check(name).is_none() {
                let _ = self.registry.set_because(
                    name,
                    ServingStatus::Unknown,
                    Reason::of(Cause::Monitor),
                );
            }
        }
        self.configured = wanted;
        // Stopped tasks end at their next await; nothing waits on them here.
        drop(self.reconcile());
    }

    /// Starts what may run and is not running (or runs an old config), stops
    /// the rest; returns the tasks stopped.
    fn reconcile(&mut self) -> Vec<JoinHandle<()>> {
        let may_run = |name: &str| self.allowed.as_ref().is_none_or(|a| a.contains(name));
        let stop: Vec<String> = self
            .running
            .iter()
            .filter(|(name, (config, _))| {
                !may_run(name) || self.configured.get(*name) != Some(config)
            })
            .map(|(name, _)| name.clone())
            .collect();
        let mut stopped = Vec::new();
        for name in stop {
            if let Some((_, task)) = self.running.remove(&name) {
                task.abort();
                stopped.push(task);
            }
        }
        let start: Vec<Arc<UpstreamConfig>> = self
            .configured
            .values()
            .filter(|config| may_run(&config.name) && !self.running.contains_key(&config.name))
            .cloned()
            .collect();
        for config in start {
            let task = tokio::spawn(
                task::Upstream::new(
                    Arc::clone(&config),
                    self.registry.clone(),
                    self.reports.clone(),
                    self.observers.clone(),
                    self.replica.clone(),
                    self.pool.clone(),
                )
                .run(),
            );
            self.running.insert(config.name.clone(), (config, task));
        }
        stopped
    }

    /// Stops every task; the statuses they set stay as they are.
    pub fn stop(&mut self) {
        for (_, (_, task)) in self.running.drain() {
            task.abort();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for (_, task) in self.running.values() {
            task.abort();
        }
    }
}
