//! The small trait every history store implements, and what it stores. SQLite
//! (a file, or memory) is the one there is; a PostgreSQL store for replicas
//! would implement the same few methods.

/// One recorded change, or several folded together (a flapping service).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
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

/// One minute of a monitored upstream's probe latency.
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
    /// The file was written by a newer healthweb.
    #[error("{0} was written by a newer healthweb (history schema {1}; this one knows up to {2})")]
    Newer(String, i64, i64),
    /// Another process holds the file.
    #[error("{0} is in use by another process (another healthweb with the same --history?)")]
    Locked(String),
    /// Anything else the database said.
    #[error("history store: {0}")]
    Database(String),
}

/// A history store. One writer and the readers take turns (the caller holds it
/// behind a lock), so methods take `&mut self`.
pub trait Store: Send {
    /// Appends `rows` and upserts `minutes` in one transaction, noting `alive_ms`
    /// as the last sign of life.
    fn append(
        &mut self,
        rows: &[Row],
        minutes: &[MinuteRow],
        alive_ms: i64,
    ) -> Result<(), StoreError>;

    /// Up to `limit` rows of `service` with `since_ms <= at_ms < until_ms`, newest
    /// first; and whether older ones in the range were left out.
    fn transitions(
        &mut self,
        service: &str,
        since_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<(Vec<Row>, bool), StoreError>;

    /// The rows of `service` with `at_ms` in `[since_ms, until_ms)`, oldest first,
    /// preceded by the last row before `since_ms`, if any.
    fn timeline(
        &mut self,
        service: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<Row>, StoreError>;

    /// When `service`'s history begins, if it has any.
    fn first_ms(&mut self, service: &str) -> Result<Option<i64>, StoreError>;

    /// `service`'s latency minutes starting at or after `since_ms`, oldest first.
    fn minutes(&mut self, service: &str, since_ms: i64) -> Result<Vec<MinuteRow>, StoreError>;

    /// Deletes rows and minutes older than `before_ms`, and each service's oldest
    /// rows past `max_rows`; returns how many rows went.
    fn prune(&mut self, before_ms: i64, max_rows: u64) -> Result<u64, StoreError>;

    /// How the last run ended, if it did not stop cleanly.
    fn unclean_stop(&mut self) -> Result<Option<UncleanStop>, StoreError>;

    /// Marks the store in use (`clean = false`) or cleanly stopped.
    fn mark(&mut self, clean: bool) -> Result<(), StoreError>;
}
