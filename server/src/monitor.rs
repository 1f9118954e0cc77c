//! Upstream monitoring: one task per `[[upstream]]`, each turning what it sees
//! into a service status in healthweb's own registry.
//!
//! - Watch first (a change arrives at once and is taken at once); a Watch that
//!   ends with UNIMPLEMENTED switches the upstream to polling Check for good.
//! - Thresholds count consecutive probe results (polls, errors, failed
//!   reconnects), as Kubernetes and Envoy count them.
//! - Each upstream has its own task, deadline and jittered interval, so a
//!   hanging one never delays another.
//! - [`Monitor::apply`] adds, changes and removes upstreams on reload without
//!   touching the others; a removed one leaves the registry.
//!
//! What each task saw last is kept in [`Reports`], served as JSON at `/upstreams`.
//!
//! # Layout
//! - `task`: one upstream's loop: Watch, poll, or plain HTTP.
//! - `thresholds`: the consecutive-result counters.
//! - `http`: the plain HTTP probe.

mod http;
mod task;
mod thresholds;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, RwLock},
    time::Duration,
};

use serde::Serialize;
use tokio::task::JoinHandle;

pub use thresholds::Thresholds;

use crate::{
    registry::{Cause, HealthRegistry, Reason},
    upstream::{UpstreamConfig, Via},
};

/// How the monitor follows an upstream right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A Watch stream is open.
    Watch,
    /// Check (or an HTTP GET) every interval.
    Poll,
}

/// What the monitor saw last of one upstream.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The upstream's address.
    pub target: String,
    /// How it is asked.
    pub protocol: Via,
    /// `watch` while a Watch stream is open, `poll` otherwise.
    pub mode: Mode,
    /// The status healthweb shows for it.
    pub status: &'static str,
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
    running: HashMap<String, (UpstreamConfig, JoinHandle<()>)>,
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
            running: HashMap::new(),
        }
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

    /// Brings the running tasks in line with `upstreams`: new ones start, changed
    /// ones restart (their status stays until the new task knows better), removed
    /// ones stop and leave the registry. Unchanged ones are not touched.
    pub fn apply(&mut self, upstreams: &[UpstreamConfig]) {
        let wanted: HashMap<&str, &UpstreamConfig> =
            upstreams.iter().map(|u| (u.name.as_str(), u)).collect();
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|name| !wanted.contains_key(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some((_, task)) = self.running.remove(&name) {
                task.abort();
            }
            let _ = self
                .registry
                .remove_because(&name, Reason::of(Cause::Reload));
            self.reports
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&name);
        }
        for (name, config) in wanted {
            if self.running.get(name).is_some_and(|(old, _)| old == config) {
                continue;
            }
            if let Some((_, task)) = self.running.remove(name) {
                task.abort();
            }
            let task = tokio::spawn(
                task::Upstream::new(
                    config.clone(),
                    self.registry.clone(),
                    self.reports.clone(),
                    self.observers.clone(),
                )
                .run(),
            );
            self.running.insert(name.to_owned(), (config.clone(), task));
        }
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
