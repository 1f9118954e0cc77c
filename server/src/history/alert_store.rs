//! What the alerts keep in the history store ([`AlertStore`]): the alerts firing
//! now, the outbox of notifications, and the maintenance windows opened through
//! the admin API. Both stores implement it, SQLite for one instance and
//! PostgreSQL for replicas, where it is fenced by the `alerts` lease
//! ([`SENDER_LEASE`]): only its holder changes alert states and writes or claims
//! notifications, so each notification is written once and sent by one replica.
//!
//! The outbox, as payment systems keep one: a notification is written in the
//! same transaction as the alert state that caused it, then delivered by the
//! sender, retried with backoff until its deadline, and marked delivered or
//! failed. A restart (or another replica) resumes what is pending: nothing sent
//! is repeated, nothing due is forgotten. A notification whose answer was lost
//! (the sender died between the receiver's 2xx and its mark) is sent again with
//! the same event id, for the receiver to deduplicate.

use std::time::Duration;

use super::StoreError;

/// The lease whose holder evaluates alerts and sends notifications, when
/// replicas share a store.
pub const SENDER_LEASE: &str = "alerts";

/// An alert that fired and has not resolved: one per rule and service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertState {
    /// The rule's name.
    pub rule: String,
    /// The service.
    pub service: String,
    /// Shared by the alert's notifications (firing, reminders, resolved).
    pub alert_id: String,
    /// The bad status it fired for (a `ServingStatus` number).
    pub status: i32,
    /// The status before the service went bad.
    pub previous: i32,
    /// Bad since, Unix milliseconds.
    pub since_ms: i64,
    /// When it fired.
    pub fired_ms: i64,
    /// The last notification about it (the firing, or a reminder).
    pub reminded_ms: i64,
    /// Reminders sent so far.
    pub reminders: u32,
}

/// A notification to write into the outbox, for one receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The notification's id: the same for every receiver and every retry.
    pub event: String,
    /// The receiver's name.
    pub receiver: String,
    /// The service it is about.
    pub service: String,
    /// The rule that made it.
    pub rule: String,
    /// `firing`, `reminder`, `resolved`.
    pub kind: String,
    /// The notification, as JSON (`healthweb.alert.v1`).
    pub payload: String,
    /// When it was made, Unix milliseconds.
    pub created_ms: i64,
    /// Retried until then; then it has failed.
    pub deadline_ms: i64,
}

/// How far a notification got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Not delivered yet: due at `due_ms`.
    Pending,
    /// The receiver took it (2xx).
    Delivered,
    /// Given up: refused, or not delivered by its deadline.
    Failed,
}

impl Delivery {
    /// Its word in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// From its word.
    pub fn parse(word: &str) -> Self {
        match word {
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// A notification in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outboxed {
    /// Its row.
    pub id: i64,
    /// What was written.
    pub notice: Notice,
    /// The next attempt, Unix milliseconds.
    pub due_ms: i64,
    /// Attempts so far.
    pub attempts: u32,
    /// How far it got.
    pub state: Delivery,
    /// The last attempt, Unix milliseconds (0: none yet).
    pub last_ms: i64,
    /// What the receiver said last, or why it could not be reached.
    pub outcome: String,
}

/// What one attempt did to a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The notification's row.
    pub id: i64,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// Where it stands now.
    pub state: Delivery,
    /// The next attempt, while pending.
    pub due_ms: i64,
    /// When this attempt ended.
    pub last_ms: i64,
    /// What the receiver said, or the error.
    pub outcome: String,
}

/// One evaluation's writes, in one transaction: alert states set and cleared,
/// and the notifications they caused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    /// Alerts that fired, or were reminded of.
    pub set: Vec<AlertState>,
    /// Alerts that resolved (or whose rule is gone): (rule, service).
    pub clear: Vec<(String, String)>,
    /// Notifications for the outbox.
    pub notices: Vec<Notice>,
}

impl Commit {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.clear.is_empty() && self.notices.is_empty()
    }
}

/// What the sender gets when it asks for work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// This notification, claimed for this instance.
    Claimed(Box<Outboxed>),
    /// Nothing deliverable now; the earliest pending one is due then, if any.
    Idle(Option<i64>),
    /// This instance does not hold the `alerts` lease (replicas).
    Fenced,
}

/// A maintenance window opened through the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdHocWindow {
    /// Its id, to end it early.
    pub id: String,
    /// Service names and glob patterns.
    pub services: Vec<String>,
    /// When it starts, Unix milliseconds.
    pub start_ms: i64,
    /// When it ends.
    pub end_ms: i64,
    /// Why, as said when it was opened.
    pub reason: String,
    /// The replica it was opened on.
    pub replica: String,
    /// When it was opened.
    pub created_ms: i64,
}

/// The alerts' part of a history store.
#[async_trait::async_trait]
pub trait AlertStore: Send + Sync {
    /// Takes or renews the `alerts` lease for `period`; whether this instance
    /// holds it (always, for a store of one instance).
    async fn lead(&self, period: Duration) -> Result<bool, StoreError>;

    /// Every alert firing now.
    async fn alert_states(&self) -> Result<Vec<AlertState>, StoreError>;

    /// Writes `commit` in one transaction. `false`: not written, because this
    /// instance does not hold the `alerts` lease (replicas).
    async fn commit_alerts(&self, commit: &Commit) -> Result<bool, StoreError>;

    /// Claims, for `claim`, the oldest notification for `receiver` that is due
    /// at `now_ms` and has no older one about the same service still pending
    /// (so that a service's notifications arrive in order).
    async fn next_notice(
        &self,
        receiver: &str,
        now_ms: i64,
        claim: Duration,
    ) -> Result<Next, StoreError>;

    /// Records an attempt (and lets go of the claim).
    async fn record_attempt(&self, attempt: &Attempt) -> Result<(), StoreError>;

    /// Each service's latest notification made at or after `since_ms`, and
    /// every one still pending.
    async fn recent_notices(&self, since_ms: i64) -> Result<Vec<Outboxed>, StoreError>;

    /// The ad hoc windows that end at or after `since_ms`.
    async fn windows(&self, since_ms: i64) -> Result<Vec<AdHocWindow>, StoreError>;

    /// Opens a window; `false` when `max` windows are open already (ending
    /// after `window.start_ms`).
    async fn add_window(&self, window: &AdHocWindow, max: usize) -> Result<bool, StoreError>;

    /// Ends window `id` at `at_ms` (if it ends later); the window, if it exists.
    async fn end_window(&self, id: &str, at_ms: i64) -> Result<Option<AdHocWindow>, StoreError>;

    /// Deletes notifications delivered or failed, and windows ended, before
    /// `before_ms`.
    async fn prune_alerts(&self, before_ms: i64) -> Result<(), StoreError>;
}
