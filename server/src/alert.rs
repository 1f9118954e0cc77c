//! Alerts: the people who own a service hear of it, once.
//!
//! The registry tells [`Changes`] (an [`Observer`]) of every transition as it
//! makes it; the engine task reads them in order, keeps for each rule and service
//! since when it is bad (or good again), and, when a rule's `failure_threshold`
//! has passed, fires: the alert state and one notification per receiver are
//! written to the store's outbox in one transaction ([`AlertStore`]). A
//! resolution (after `success_threshold`) and reminders (`repeat_interval`) go
//! the same way. Each receiver's task ([`deliver`]) sends its notifications
//! from the outbox, so a slow receiver holds neither Health nor the others.
//!
//! A restart reads the firing alerts back from the store: what was sent is not
//! sent again, what was pending is resumed, and an alert whose service is good
//! again after the restart is resolved. The instance's own drain (every service
//! NOT_SERVING while it shuts down) is not an outage and alerts no one.
//!
//! # Layout
//! - `config`: `[[alert]]` receivers and `[[alert_rule]]` rules.
//! - `deliver`: the notification's forms, the HTTP client, retries and backoff.
//! - `maintenance`: windows from the config and the admin API, which hold alerts.

pub mod config;
pub mod deliver;
pub mod maintenance;

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, UNIX_EPOCH},
};

use healthweb_proto::pb::health_check_response::ServingStatus;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub use self::config::{Receiver, Rule};
use self::{
    deliver::{Notification, Sender},
    maintenance::{Maintenance, Scheduled},
};
pub use crate::history::now_ms;
use crate::{
    history::alert_store::{AlertState, AlertStore, Commit, Delivery, Notice},
    registry::{Cause, HealthRegistry, Observer, Origin, Reason},
};

/// Changes kept for the engine at most; past it the oldest are dropped and the
/// engine reads the registry whole instead.
const CHANGES_LIMIT: usize = 65_536;

/// How often old notifications and windows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The alerts' settings: receivers, rules, and the page's address for links.
#[derive(Debug, Clone, Default)]
pub struct AlertSettings {
    /// `[[alert]]`.
    pub receivers: Vec<Receiver>,
    /// `[[alert_rule]]`.
    pub rules: Vec<Rule>,
    /// `[[maintenance]]`.
    pub windows: Vec<Scheduled>,
    /// The status page's public address (`public_url`), for links.
    pub public_url: Option<String>,
    /// This replica's name, in the notifications.
    pub replica: String,
    /// How long the `alerts` lease lasts (replicas); renewed every third of it.
    pub lease_period: Duration,
    /// Notifications sent or failed, and windows ended, are kept this long.
    pub retention: Duration,
}

/// One change, as the registry told it.
#[derive(Debug, Clone)]
struct Change {
    service: String,
    to: ServingStatus,
    at_ms: i64,
    cause: Cause,
    detail: String,
}

#[derive(Debug, Default)]
struct Queue {
    changes: VecDeque<Change>,
    /// Changes were dropped: read the registry whole.
    overflowed: bool,
}

/// Hears the registry's transitions for the engine: a queue and a wake-up, so
/// the registry's lock is held no longer than a push.
#[derive(Debug, Default)]
pub struct Changes {
    queue: Mutex<Queue>,
    wake: Notify,
}

impl Observer for Changes {
    fn changed(&self, service: &str, _: ServingStatus, to: ServingStatus, reason: Reason<'_>) {
        // The drain is this instance going away, not the service.
        if reason.origin == Origin::Drain {
            return;
        }
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.changes.len() >= CHANGES_LIMIT {
            queue.changes.pop_front();
            queue.overflowed = true;
        }
        queue.changes.push_back(Change {
            service: service.to_owned(),
            to,
            at_ms: now_ms(),
            cause: reason.cause,
            detail: reason.detail.to_owned(),
        });
        drop(queue);
        self.wake.notify_one();
    }
}

impl Changes {
    fn take(&self) -> Queue {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SentLabels {
    receiver: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

/// `healthweb_alerts_sent_total{receiver, outcome}` and
/// `healthweb_alerts_firing{service}`, for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct AlertMetrics {
    sent: Family<SentLabels, Counter>,
    firing: Arc<Mutex<HashMap<(String, String), ()>>>,
}

impl AlertMetrics {
    fn sent(&self, receiver: &str, state: Delivery) {
        let outcome = match state {
            Delivery::Delivered => "delivered",
            Delivery::Failed => "failed",
            Delivery::Pending => "retried",
        };
        self.sent
            .get_or_create(&SentLabels {
                receiver: receiver.to_owned(),
                outcome,
            })
            .inc();
    }

    fn set_firing(&self, firing: &HashMap<(String, String), AlertState>) {
        let mut mine = self.firing.lock().unwrap_or_else(|e| e.into_inner());
        *mine = firing.keys().map(|k| (k.clone(), ())).collect();
    }
}

impl Collector for AlertMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let described = encoder.encode_descriptor(
            "healthweb_alerts_sent",
            "Attempts to deliver alert notifications, by receiver and outcome (delivered, retried, failed)",
            None,
            self.sent.metric_type(),
        )?;
        self.sent.encode(described)?;
        let firing = Family::<ServiceLabel, Gauge>::default();
        for (_, service) in self.firing.lock().unwrap_or_else(|e| e.into_inner()).keys() {
            firing
                .get_or_create(&ServiceLabel {
                    service: service.clone(),
                })
                .inc();
        }
        let described = encoder.encode_descriptor(
            "healthweb_alerts_firing",
            "Alerts firing now, by service",
            None,
            firing.metric_type(),
        )?;
        firing.encode(described)
    }
}

/// What the engine knows of one rule and one service.
#[derive(Debug, Clone, Copy, Default)]
struct Track {
    /// Bad (for the rule) since.
    bad_since: Option<i64>,
    /// Good again since.
    good_since: Option<i64>,
    /// The status before it went bad.
    previous: Option<ServingStatus>,
}

/// A service's latest status, with its cause.
#[derive(Debug, Clone)]
struct Seen {
    status: ServingStatus,
    cause: Cause,
    detail: String,
}

/// The alerts, built; [`Alerts::start`] runs them.
pub struct Alerts {
    settings: AlertSettings,
    changes: Arc<Changes>,
    metrics: AlertMetrics,
}

impl Alerts {
    /// Alerts for `settings`; give [`Self::observer`] to the registry and
    /// [`Self::metrics`] to `/metrics`.
    pub fn new(settings: AlertSettings) -> Self {
        Self {
            settings,
            changes: Arc::default(),
            metrics: AlertMetrics::default(),
        }
    }

    /// Whether there is anything to do (a rule).
    pub fn is_enabled(&self) -> bool {
        !self.settings.rules.is_empty()
    }

    /// What hears the registry.
    pub fn observer(&self) -> Arc<Changes> {
        self.changes.clone()
    }

    /// The alert series for `/metrics`.
    pub fn metrics(&self) -> AlertMetrics {
        self.metrics.clone()
    }

    /// The alerts with the store that keeps their state, the outbox and the ad
    /// hoc maintenance windows.
    pub fn with_store(mut self, store: Arc<dyn AlertStore>) -> Alerting {
        let windows = std::mem::take(&mut self.settings.windows);
        let maintenance = Maintenance::new(windows, store.clone(), self.settings.replica.clone());
        Alerting {
            alerts: self,
            store,
            maintenance,
        }
    }
}

/// [`Alerts`] with their store, ready to start.
pub struct Alerting {
    alerts: Alerts,
    store: Arc<dyn AlertStore>,
    maintenance: Maintenance,
}

impl Alerting {
    /// The maintenance windows, for the admin API and the page.
    pub fn maintenance(&self) -> Maintenance {
        self.maintenance.clone()
    }

    /// Starts the engine and one task per receiver, until `stop`.
    pub fn start(self, registry: HealthRegistry, stop: CancellationToken) -> Vec<JoinHandle<()>> {
        let Self {
            alerts: this,
            store,
            maintenance,
        } = self;
        let mut tasks = Vec::new();
        let mut wakes = HashMap::new();
        for receiver in &this.settings.receivers {
            let wake = Arc::new(Notify::new());
            wakes.insert(receiver.name.clone(), wake.clone());
            let sender = match Sender::new(receiver.clone()) {
                Ok(sender) => Arc::new(sender),
                Err(error) => {
                    tracing::error!(receiver = %receiver.name, %error, "alert receiver unusable");
                    continue;
                }
            };
            tasks.push(tokio::spawn(deliver::run(
                sender,
                store.clone(),
                wake,
                this.metrics.clone(),
                stop.clone(),
            )));
        }
        if this.is_enabled() {
            let engine = Engine {
                settings: this.settings,
                store,
                registry,
                changes: this.changes,
                metrics: this.metrics,
                wakes,
                seen: HashMap::new(),
                tracks: HashMap::new(),
                firing: HashMap::new(),
                loaded: false,
                leading: false,
                maintenance,
            };
            tasks.push(tokio::spawn(engine.run(stop)));
        }
        tasks
    }
}

struct Engine {
    settings: AlertSettings,
    store: Arc<dyn AlertStore>,
    registry: HealthRegistry,
    changes: Arc<Changes>,
    metrics: AlertMetrics,
    wakes: HashMap<String, Arc<Notify>>,
    seen: HashMap<String, Seen>,
    /// By (rule index, service).
    tracks: HashMap<(usize, String), Track>,
    /// The firing alerts as the store has them, by (rule name, service).
    firing: HashMap<(String, String), AlertState>,
    /// Whether `firing` was read from the store since it last refused a write.
    loaded: bool,
    /// Whether this instance held the `alerts` lease at the last look.
    leading: bool,
    maintenance: Maintenance,
}

impl Engine {
    async fn run(mut self, stop: CancellationToken) {
        // The observer was the registry's from its start: the queue holds
        // every status it ever had.
        let changes = self.changes.clone();
        let windows = self.maintenance.changed();
        let renew = (self.settings.lease_period / 3).min(Duration::from_secs(2));
        let mut renewed = tokio::time::Instant::now();
        let mut pruned: Option<tokio::time::Instant> = None;
        self.lead().await;
        loop {
            if self.leading && pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned = Some(tokio::time::Instant::now());
                let before = now_ms() - self.settings.retention.as_millis() as i64;
                if let Err(error) = self.store.prune_alerts(before).await {
                    tracing::warn!(%error, "alerts: cannot prune old notifications");
                }
            }
            if renewed.elapsed() >= renew {
                renewed = tokio::time::Instant::now();
                self.lead().await;
                // Windows opened or ended through another replica.
                if let Err(error) = self.maintenance.refresh(now_ms()).await {
                    tracing::warn!(%error, "alerts: cannot read the maintenance windows");
                }
            }
            let queue = changes.take();
            for change in queue.changes {
                self.observe(change);
            }
            // Some were dropped: the registry as it is now has the last word.
            if queue.overflowed {
                tracing::warn!("alerts: too many changes at once; reading the statuses whole");
                let now = now_ms();
                let list = self.registry.list();
                for service in self.seen.keys().cloned().collect::<Vec<_>>() {
                    if !list.contains_key(&service) {
                        self.observe(Change::removed(service, now));
                    }
                }
                for (service, to) in list {
                    self.observe(Change::plain(service, to, now));
                }
            }
            // Another replica sends the alerts: keep count, write nothing.
            let next = if self.leading {
                self.evaluate().await
            } else {
                None
            };
            let pause = next
                .map_or(Duration::from_secs(60), |at| {
                    Duration::from_millis(at.saturating_sub(now_ms()).clamp(1, 60_000) as u64)
                })
                .min(renew.saturating_sub(renewed.elapsed()));
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = changes.wake.notified() => {}
                () = windows.notified() => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Takes or renews the `alerts` lease; on taking it, reads the firing
    /// alerts again (the last holder may have changed them).
    async fn lead(&mut self) {
        let leading = match self.store.lead(self.settings.lease_period).await {
            Ok(leading) => leading,
            Err(error) => {
                tracing::warn!(%error, "alerts: cannot renew the alerts lease");
                false
            }
        };
        if leading && !self.leading {
            self.loaded = false;
        }
        self.leading = leading;
    }

    /// Takes one change into the tracks of the rules that cover its service.
    fn observe(&mut self, change: Change) {
        let before = self.seen.get(&change.service).map(|s| s.status);
        if before == Some(change.to) {
            return;
        }
        for (index, rule) in self.settings.rules.iter().enumerate() {
            if !rule.covers(&change.service) {
                continue;
            }
            let track = self
                .tracks
                .entry((index, change.service.clone()))
                .or_default();
            if rule.is_bad(change.to) {
                if track.bad_since.is_none() {
                    track.bad_since = Some(change.at_ms);
                    track.previous = Some(before.unwrap_or(ServingStatus::ServiceUnknown));
                }
                track.good_since = None;
            } else {
                track.bad_since = None;
                track.good_since.get_or_insert(change.at_ms);
            }
        }
        self.seen.insert(
            change.service,
            Seen {
                status: change.to,
                cause: change.cause,
                detail: change.detail,
            },
        );
    }

    /// Fires, reminds and resolves what is due; returns when next to look.
    async fn evaluate(&mut self) -> Option<i64> {
        if !self.loaded {
            match self.store.alert_states().await {
                Ok(states) => {
                    self.firing = states
                        .into_iter()
                        .map(|s| ((s.rule.clone(), s.service.clone()), s))
                        .collect();
                    self.loaded = true;
                    self.metrics.set_firing(&self.firing);
                }
                Err(error) => {
                    tracing::warn!(%error, "alerts: cannot read the firing alerts; retrying");
                    return Some(now_ms() + 1000);
                }
            }
        }
        let now = now_ms();
        let mut commit = Commit::default();
        let mut next: Option<i64> = None;
        let mut soon = |at: i64| next = Some(next.map_or(at, |n| n.min(at)));
        for ((index, service), track) in &self.tracks {
            let rule = &self.settings.rules[*index];
            let key = (rule.name.clone(), service.clone());
            let threshold = |d: Duration| d.as_millis() as i64;
            match (self.firing.get(&key), track.bad_since, track.good_since) {
                (None, Some(bad), _) => {
                    let due = bad + threshold(rule.failure_threshold);
                    if let Some(at) = waits(now, due, || self.maintenance.until(service, now)) {
                        soon(at);
                        continue;
                    }
                    let state = AlertState {
                        rule: rule.name.clone(),
                        service: service.clone(),
                        alert_id: new_id(),
                        status: self.status(service) as i32,
                        previous: track.previous.unwrap_or(ServingStatus::Serving) as i32,
                        since_ms: bad,
                        fired_ms: now,
                        reminded_ms: now,
                        reminders: 0,
                    };
                    self.notify(&mut commit, rule, &state, "firing", &state.alert_id, bad);
                    if let Some(every) = rule.repeat_interval {
                        soon(now + threshold(every));
                    }
                    commit.set.push(state);
                }
                (Some(state), Some(_), _) => {
                    let Some(every) = rule.repeat_interval else {
                        continue;
                    };
                    let due = state.reminded_ms + threshold(every);
                    if let Some(at) = waits(now, due, || self.maintenance.until(service, now)) {
                        soon(at);
                        continue;
                    }
                    let mut state = state.clone();
                    state.reminders += 1;
                    state.reminded_ms = now;
                    state.status = self.status(service) as i32;
                    let event = format!("{}-reminder-{}", state.alert_id, state.reminders);
                    self.notify(
                        &mut commit,
                        rule,
                        &state,
                        "reminder",
                        &event,
                        state.since_ms,
                    );
                    soon(now + threshold(every));
                    commit.set.push(state);
                }
                (Some(state), None, Some(good)) => {
                    let due = good + threshold(rule.success_threshold);
                    if now < due {
                        soon(due);
                        continue;
                    }
                    if rule.send_resolved {
                        let event = format!("{}-resolved", state.alert_id);
                        self.notify(&mut commit, rule, state, "resolved", &event, good);
                    }
                    commit.clear.push(key);
                }
                _ => {}
            }
        }
        // A firing alert whose rule is gone from the config, or no longer
        // covers its service, is cleared without a word.
        for key in self.firing.keys() {
            let kept = self
                .settings
                .rules
                .iter()
                .any(|rule| rule.name == key.0 && rule.covers(&key.1));
            if !kept && !commit.clear.contains(key) {
                commit.clear.push(key.clone());
            }
        }
        if commit.is_empty() {
            return next;
        }
        match self.store.commit_alerts(&commit).await {
            Ok(true) => {
                for state in commit.set {
                    self.firing
                        .insert((state.rule.clone(), state.service.clone()), state);
                }
                for key in &commit.clear {
                    self.firing.remove(key);
                }
                self.metrics.set_firing(&self.firing);
                for notice in &commit.notices {
                    if let Some(wake) = self.wakes.get(&notice.receiver) {
                        wake.notify_one();
                    }
                }
                next
            }
            // Another replica sends the alerts; look again later, from the store.
            Ok(false) => {
                self.loaded = false;
                Some(now + 1000)
            }
            Err(error) => {
                tracing::warn!(%error, "alerts: cannot write to the store; retrying");
                Some(now + 1000)
            }
        }
    }

    fn status(&self, service: &str) -> ServingStatus {
        self.seen
            .get(service)
            .map_or(ServingStatus::ServiceUnknown, |s| s.status)
    }

    /// One notification of `kind` about `state`, for each of the rule's receivers.
    fn notify(
        &self,
        commit: &mut Commit,
        rule: &Rule,
        state: &AlertState,
        kind: &str,
        event: &str,
        since_ms: i64,
    ) {
        let seen = self.seen.get(&state.service);
        let status = |n: i32| {
            ServingStatus::try_from(n)
                .unwrap_or(ServingStatus::Unknown)
                .as_str_name()
                .to_owned()
        };
        let now = now_ms();
        let notification = Notification {
            version: deliver::VERSION.to_owned(),
            event_id: event.to_owned(),
            alert_id: state.alert_id.clone(),
            kind: kind.to_owned(),
            service: state.service.clone(),
            rule: rule.name.clone(),
            status: seen.map_or_else(|| status(state.status), |s| s.status.as_str_name().into()),
            previous: status(state.previous),
            since: rfc3339(since_ms),
            since_ms,
            cause: seen.map_or_else(|| "unspecified".into(), |s| cause_word(s.cause)),
            detail: seen.map(|s| s.detail.clone()).unwrap_or_default(),
            replica: self.settings.replica.clone(),
            link: self
                .settings
                .public_url
                .as_ref()
                .map(|url| format!("{}/#{}", url.trim_end_matches('/'), state.service)),
        };
        let payload = serde_json::to_string(&notification).unwrap_or_default();
        for name in &rule.receivers {
            let Some(receiver) = self.settings.receivers.iter().find(|r| &r.name == name) else {
                continue;
            };
            commit.notices.push(Notice {
                event: event.to_owned(),
                receiver: name.clone(),
                service: state.service.clone(),
                rule: rule.name.clone(),
                kind: kind.to_owned(),
                payload: payload.clone(),
                created_ms: now,
                deadline_ms: now + receiver.deadline.as_millis() as i64,
            });
        }
    }
}

/// When to look again at a notification due at `due`: then, if it is not due yet;
/// when the maintenance window over its service ends, if one does (it is held);
/// `None`: send it now.
fn waits(now: i64, due: i64, held_until: impl FnOnce() -> Option<i64>) -> Option<i64> {
    if now < due { Some(due) } else { held_until() }
}

impl Change {
    fn plain(service: String, to: ServingStatus, at_ms: i64) -> Self {
        Self {
            service,
            to,
            at_ms,
            cause: Cause::Unspecified,
            detail: String::new(),
        }
    }

    fn removed(service: String, at_ms: i64) -> Self {
        Self::plain(service, ServingStatus::ServiceUnknown, at_ms)
    }
}

/// `monitor` for `CAUSE_MONITOR`.
fn cause_word(cause: Cause) -> String {
    cause
        .as_str_name()
        .trim_start_matches("CAUSE_")
        .to_ascii_lowercase()
}

fn rfc3339(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(at).to_string()
}

/// A fresh id (alerts, windows): 16 random hex digits.
fn new_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
