//! Every status change, remembered: heard from the registry as it is made, kept
//! in memory for at most a second, written by one thread in one transaction,
//! kept across restarts in SQLite (or only in memory), pruned by age and count,
//! and read back for the History service, the badges and the page.
//!
//! Recording never slows a Check: Check does not change statuses, and a change
//! only appends to a short list under a lock. A service flapping faster than the
//! writer keeps up is folded: past [`ROWS_PER_FLUSH`] changes of one service in one
//! second, the rest join the last row with a count and their worst status.
//!
//! # Layout
//! - `store`: the small [`Store`] trait and its rows.
//! - `sqlite`: the SQLite store.
//! - `recorder`: what hears the registry, and the writer thread.
//! - `uptime`: windows and buckets from a timeline.
//! - `service`: the `healthweb.v1.History` gRPC service.

pub mod recorder;
pub mod service;
pub mod sqlite;
pub mod store;
pub mod uptime;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

pub use recorder::Recorder;
pub use store::{MinuteRow, Row, Store, StoreError};

/// At most this many rows per service per second; more changes are folded.
pub const ROWS_PER_FLUSH: usize = 8;

/// How often pending changes are written: what `kill -9` can lose.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Where history lives and how long it is kept.
#[derive(Debug, Clone)]
pub struct HistorySettings {
    /// The SQLite file; `None` keeps history in memory only.
    pub path: Option<PathBuf>,
    /// Rows older than this are pruned.
    pub retention: Duration,
    /// Each service keeps at most this many rows (its newest).
    pub max_rows: u64,
    /// Move a file that cannot be used (corrupt, or from a newer healthweb) aside
    /// and start afresh, instead of refusing to start.
    pub move_aside: bool,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            path: Some(PathBuf::from("healthweb-history.db")),
            retention: Duration::from_secs(30 * 24 * 3600),
            max_rows: 100_000,
            move_aside: false,
        }
    }
}

/// The store, shared by the writer thread and the readers.
#[derive(Clone)]
pub struct History {
    store: Arc<Mutex<Box<dyn Store>>>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("History")
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl History {
    /// Opens the store `settings` name: a file that cannot be used is an error,
    /// or, with `move_aside`, moved aside for a fresh one.
    pub fn open(settings: &HistorySettings) -> Result<Self, StoreError> {
        let store: Box<dyn Store> = match &settings.path {
            None => Box::new(sqlite::Sqlite::memory()?),
            Some(path) => match sqlite::Sqlite::open(path) {
                Ok(store) => Box::new(store),
                Err(error @ (StoreError::Corrupt(..) | StoreError::Newer(..)))
                    if settings.move_aside =>
                {
                    let aside = sqlite::move_aside(path, now_ms()).map_err(|e| {
                        StoreError::Database(format!("cannot move {} aside: {e}", path.display()))
                    })?;
                    tracing::warn!(%error, aside = %aside.display(), "history moved aside; starting afresh");
                    Box::new(sqlite::Sqlite::open(path)?)
                }
                Err(error) => return Err(error),
            },
        };
        Ok(Self {
            store: Arc::new(Mutex::new(store)),
        })
    }

    /// The store, for a query; every query is short.
    pub fn store(&self) -> MutexGuard<'_, Box<dyn Store>> {
        // A panic mid-query leaves the database consistent (SQLite rolls back).
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}
