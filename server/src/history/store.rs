//! The one trait every history store implements, and what it stores: SQLite (a
//! file, or memory) for one instance, PostgreSQL for replicas sharing one truth.
//!
//! The trait is async because PostgreSQL is a network away: a query waits on a
//! socket, not a disk, and must not hold a thread while it does (SQLite's
//! queries run on tokio's blocking pool behind the same methods). One writer
//! (the recorder's task) and any number of readers (the History service, the
//! badges) call it at once; each store serialises what it must.
//!
//! Writes are batches, idempotent by each row's event id: a batch whose commit
//! was not acknowledged is sent again whole, and a row already written is
//! updated in place (a folded row that took more changes), never doubled.

use std::ops::Range;

/// One recorded change, or several folded together (a flapping service).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Unique for ever: the instance's random id and a counter. A retried write
    /// of the same row updates it instead of adding a second.
    pub event: String,
    /// The replica that saw the change (`--replica-id`).
    pub replica: String,
    /// The service; `""` is the whole server.
    pub service: String,
    /// When it changed, Unix milliseconds.
    pub at_ms: i64,
    /// When the last folded change happened (`at_ms` when nothing was folded).
    pub until_ms: i64,
    /// The status before (a `ServingStatus` number; SERVICE_UNKNOWN: not registered).
    pub from: i32,
    /// The status after.
    pub to: i32,
    /// The worst status from `at_ms` to `until_ms`.
    pub worst: i32,
    /// Why (a `healthweb.v1.Cause` number).
    pub cause: i32,
    /// What the cause said, or `""`.
    pub detail: String,
    /// How many changes this row stands for.
    pub count: u32,
}

/// One minute of a monitored upstream's probe latency, as one replica saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteRow {
    /// The upstream's service name.
    pub service: String,
    /// The minute's start, Unix milliseconds.
    pub minute_ms: i64,
    /// Probes in the minute.
    pub probes: u32,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Slowest, milliseconds.
    pub max_ms: f64,
}

/// A fleet-wide service's latest status, for the replicas that share a store
/// (PostgreSQL); a store without replicas ignores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shared {
    /// The service (never `""`: the whole server is each instance's own).
    pub service: String,
    /// Its status now (SERVICE_UNKNOWN: removed).
    pub status: i32,
    /// When it took that status, Unix milliseconds: an older change never
    /// overwrites a newer one (a replica writing what it kept while cut off).
    pub changed_ms: i64,
    /// Why (a `healthweb.v1.Cause` number), and what the cause said.
    pub cause: i32,
    /// What the cause said.
    pub detail: String,
    /// The service was not registered here before: store it only if the fleet
    /// does not know it either (a config file or a new upstream registering it
    /// on every replica), and then the row of that registration (this event)
    /// only if it was stored.
    pub registers: Option<String>,
}

/// One write: rows, latency minutes, shared statuses, and a sign of life.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// New rows, and rows that took more folded changes since they were written.
    pub rows: Vec<Row>,
    /// Latency minutes (a minute is written again as it fills).
    pub minutes: Vec<MinuteRow>,
    /// Fleet-wide statuses that changed here.
    pub shared: Vec<Shared>,
    /// The writer's sign of life, Unix milliseconds.
    pub alive_ms: i64,
}

impl Batch {
    /// Whether there is nothing but the sign of life.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.minutes.is_empty() && self.shared.is_empty()
    }
}

/// What a store did with a [`Batch`] beyond writing it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Written {
    /// Shared statuses the store did not take: registrations of services the
    /// fleet already knows, and changes older than the fleet's. The replica then
    /// adopts the fleet's status for these.
    pub refused: Vec<String>,
}

/// How the last run ended when it did not stop cleanly: its last sign of life
/// (Unix milliseconds), and each service's last recorded status then.
#[derive(Debug, Clone, PartialEq)]
pub struct UncleanStop {
    /// The last sign of life.
    pub alive_ms: i64,
    /// Each service and its last status.
    pub last: Vec<(String, i32)>,
}

/// What a store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's file is not a healthweb history (or not a database at all).
    #[error("{0} is not a usable history file: {1}")]
    Corrupt(String, String),
    /// The store was written by a newer healthweb.
    #[error("{0} was written by a newer healthweb (history schema {1}; this one knows up to {2})")]
    Newer(String, i64, i64),
    /// Another process holds the file.
    #[error("{0} is in use by another process (another healthweb with the same --history?)")]
    Locked(String),
    /// The settings cannot work: a URL that does not parse, a password the
    /// database refuses, a database that does not exist, a certificate that does
    /// not verify. Retrying cannot help.
    #[error("{0}")]
    Refused(String),
    /// The database cannot be reached now (down, unreachable, timed out);
    /// retrying can help.
    #[error("{0}")]
    Unreachable(String),
    /// Anything else the database said.
    #[error("history store: {0}")]
    Database(String),
}

impl StoreError {
    /// Whether trying again later can succeed (the database is away), as opposed
    /// to a store that cannot be used as it is.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::Database(_))
    }
}

/// A history store.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// What and where it is, for messages: never a password.
    fn describe(&self) -> String;

    /// Writes `batch` in one transaction: rows upserted by event id, minutes by
    /// (service, minute), shared statuses (see [`Shared`]), and the sign of life.
    async fn write(&self, batch: &Batch) -> Result<Written, StoreError>;

    /// Up to `limit` rows of `service` with `at_ms` in `span`, newest first; and
    /// whether older ones in the span were left out.
    async fn transitions(
        &self,
        service: &str,
        span: Range<i64>,
        limit: usize,
    ) -> Result<(Vec<Row>, bool), StoreError>;

    /// The rows of `service` with `at_ms` in `span`, oldest first, preceded by the
    /// last row before it, if any.
    async fn timeline(&self, service: &str, span: Range<i64>) -> Result<Vec<Row>, StoreError>;

    /// When `service`'s history begins, if it has any.
    async fn first_ms(&self, service: &str) -> Result<Option<i64>, StoreError>;

    /// `service`'s latency minutes starting at or after `since_ms`, oldest first.
    async fn minutes(&self, service: &str, since_ms: i64) -> Result<Vec<MinuteRow>, StoreError>;

    /// Deletes rows and minutes older than `before_ms`, and each service's oldest
    /// rows past `max_rows`; returns how many rows went.
    async fn prune(&self, before_ms: i64, max_rows: u64) -> Result<u64, StoreError>;

    /// How this instance's last run ended, if it did not stop cleanly.
    async fn unclean_stop(&self) -> Result<Option<UncleanStop>, StoreError>;

    /// Marks the store in use by this instance (`clean = false`) or cleanly stopped.
    async fn mark(&self, clean: bool) -> Result<(), StoreError>;
}
