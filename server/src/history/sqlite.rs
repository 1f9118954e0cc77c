//! The SQLite store (rusqlite, SQLite built in): one file, or memory, for one
//! instance. Queries run on tokio's blocking pool, one at a time (a mutex): SQLite
//! does file I/O and must not hold up the tasks that answer Checks.
//!
//! - Write-ahead log with `synchronous=NORMAL`: a commit survives the process
//!   being killed, so `kill -9` loses at most what was not yet written (a second).
//! - `locking_mode=EXCLUSIVE`: the file stays locked while healthweb runs, so a
//!   second healthweb on the same file is refused at start instead of both writing.
//! - The schema is versioned with `PRAGMA user_version`, one migration per file in
//!   `server/migrations/`; a file from a newer schema is refused, never rewritten.
//! - At open, `PRAGMA quick_check` finds a corrupt file before anything is lost.

use std::{
    ops::Range,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use super::store::{Batch, MinuteRow, Row, Store, StoreError, UncleanStop, Written};

mod alerts;

/// The migrations, in order; `user_version` counts how many were applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_history.sql"),
    include_str!("../../migrations/sqlite/0002_events.sql"),
    include_str!("../../migrations/sqlite/0003_alerts.sql"),
];

/// A history in SQLite, shared by the writer and the readers.
#[derive(Clone)]
pub struct Sqlite {
    database: Arc<Mutex<Database>>,
    name: String,
}

/// The connection, used by one query at a time.
pub struct Database {
    connection: Connection,
    name: String,
}

impl Sqlite {
    /// Opens (or creates) the history at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Database::open(path).map(Self::new)
    }

    /// A history in memory, gone when the process ends.
    pub fn memory() -> Result<Self, StoreError> {
        Database::memory().map(Self::new)
    }

    fn new(database: Database) -> Self {
        Self {
            name: database.name.clone(),
            database: Arc::new(Mutex::new(database)),
        }
    }

    /// Runs `query` on the blocking pool, with the connection to itself.
    async fn run<T: Send + 'static>(
        &self,
        query: impl FnOnce(&mut Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let database = self.database.clone();
        tokio::task::spawn_blocking(move || {
            // A panic mid-query leaves the database consistent (SQLite rolls back).
            query(&mut database.lock().unwrap_or_else(|e| e.into_inner()))
        })
        .await
        .map_err(|e| StoreError::Database(format!("a history query stopped: {e}")))?
    }
}

impl Database {
    fn open(path: &Path) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        let connection = Connection::open(path).map_err(|e| classify(&name, e))?;
        Self::prepare(connection, name)
    }

    fn memory() -> Result<Self, StoreError> {
        let connection = Connection::open_in_memory().map_err(|e| classify("memory", e))?;
        Self::prepare(connection, "memory".into())
    }

    fn prepare(connection: Connection, name: String) -> Result<Self, StoreError> {
        let fail = |e| classify(&name, e);
        // Exclusive before WAL: the log then needs no shared-memory file, and the
        // lock taken by the first write below is held until healthweb exits.
        connection
            .pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(fail)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail)?;
        let check: String = connection
            .pragma_query_value(None, "quick_check", |row| row.get(0))
            .map_err(fail)?;
        if check != "ok" {
            return Err(StoreError::Corrupt(name, check));
        }
        let mut store = Self { connection, name };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let name = self.name.clone();
        let fail = |e| classify(&name, e);
        let version: i64 = self
            .connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(fail)?;
        let latest = MIGRATIONS.len() as i64;
        if version > latest {
            return Err(StoreError::Newer(self.name.clone(), version, latest));
        }
        if version > 0 && !self.has_table("transitions")? {
            return Err(StoreError::Corrupt(
                self.name.clone(),
                "it has a schema version but no transitions table".into(),
            ));
        }
        // The write that takes the file's lock, even with nothing to migrate.
        let tx = self.connection.transaction().map_err(fail)?;
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(migration).map_err(fail)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(fail)?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('opened', 1)
             ON CONFLICT (key) DO UPDATE SET value = value + 1",
            [],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)
    }

    fn has_table(&self, table: &str) -> Result<bool, StoreError> {
        self.connection
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(|e| self.error(e))
    }

    fn error(&self, error: rusqlite::Error) -> StoreError {
        classify(&self.name, error)
    }

    fn meta(&self, key: &str) -> Result<Option<i64>, StoreError> {
        self.connection
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|e| self.error(e))
    }
}

/// Names what went wrong at the file level; everything else is a database error.
fn classify(name: &str, error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt(name.to_owned(), error.to_string())
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Locked(name.to_owned())
        }
        _ => StoreError::Database(format!("{name}: {error}")),
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        event: r.get(0)?,
        replica: r.get(1)?,
        service: r.get(2)?,
        at_ms: r.get(3)?,
        until_ms: r.get(4)?,
        from: r.get(5)?,
        to: r.get(6)?,
        worst: r.get(7)?,
        cause: r.get(8)?,
        detail: r.get(9)?,
        count: r.get(10)?,
    })
}

const COLUMNS: &str = "coalesce(event_id, ''), replica, service, at_ms, until_ms, \
                       from_status, to_status, worst, cause, detail, count";

impl Database {
    fn write(&mut self, batch: &Batch) -> Result<(), StoreError> {
        let name = self.name.clone();
        let fail = |e| classify(&name, e);
        let tx = self.connection.transaction().map_err(fail)?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO transitions (event_id, replica, service, at_ms, until_ms,
                       from_status, to_status, worst, cause, detail, count)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (event_id) DO UPDATE SET
                       until_ms = excluded.until_ms, to_status = excluded.to_status,
                       worst = excluded.worst, count = excluded.count",
                )
                .map_err(fail)?;
            for r in &batch.rows {
                upsert
                    .execute(params![
                        r.event, r.replica, r.service, r.at_ms, r.until_ms, r.from, r.to, r.worst,
                        r.cause, r.detail, r.count
                    ])
                    .map_err(fail)?;
            }
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO latency (service, minute_ms, probes, p50_ms, p99_ms, max_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (service, minute_ms) DO UPDATE SET
                       probes = excluded.probes, p50_ms = excluded.p50_ms,
                       p99_ms = excluded.p99_ms, max_ms = excluded.max_ms",
                )
                .map_err(fail)?;
            for m in &batch.minutes {
                upsert
                    .execute(params![
                        m.service,
                        m.minute_ms,
                        m.probes,
                        m.p50_ms,
                        m.p99_ms,
                        m.max_ms
                    ])
                    .map_err(fail)?;
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('alive_ms', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [batch.alive_ms],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)
    }

    fn transitions(
        &mut self,
        service: &str,
        span: Range<i64>,
        limit: usize,
    ) -> Result<(Vec<Row>, bool), StoreError> {
        let mut query = self
            .connection
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM transitions
                 WHERE service = ?1 AND at_ms >= ?2 AND at_ms < ?3
                 ORDER BY at_ms DESC, id DESC LIMIT ?4"
            ))
            .map_err(|e| classify(&self.name, e))?;
        let mut rows = query
            .query_map(
                params![service, span.start, span.end, limit as i64 + 1],
                row,
            )
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| classify(&self.name, e))?;
        let truncated = rows.len() > limit;
        rows.truncate(limit);
        Ok((rows, truncated))
    }

    fn timeline(&mut self, service: &str, span: Range<i64>) -> Result<Vec<Row>, StoreError> {
        let name = self.name.clone();
        let fail = |e| classify(&name, e);
        let before = self
            .connection
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM transitions WHERE service = ?1 AND at_ms < ?2
                 ORDER BY at_ms DESC, id DESC LIMIT 1"
            ))
            .map_err(fail)?
            .query_row(params![service, span.start], row)
            .optional()
            .map_err(fail)?;
        let mut query = self
            .connection
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM transitions
                 WHERE service = ?1 AND at_ms >= ?2 AND at_ms < ?3 ORDER BY at_ms, id"
            ))
            .map_err(fail)?;
        let within = query
            .query_map(params![service, span.start, span.end], row)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(fail)?;
        Ok(before.into_iter().chain(within).collect())
    }

    fn first_ms(&mut self, service: &str) -> Result<Option<i64>, StoreError> {
        self.connection
            .query_row(
                "SELECT min(at_ms) FROM transitions WHERE service = ?1",
                [service],
                |r| r.get(0),
            )
            .map_err(|e| self.error(e))
    }

    fn minutes(&mut self, service: &str, since_ms: i64) -> Result<Vec<MinuteRow>, StoreError> {
        let mut query = self
            .connection
            .prepare_cached(
                "SELECT service, minute_ms, probes, p50_ms, p99_ms, max_ms FROM latency
                 WHERE service = ?1 AND minute_ms >= ?2 ORDER BY minute_ms",
            )
            .map_err(|e| classify(&self.name, e))?;
        query
            .query_map(params![service, since_ms], |r| {
                Ok(MinuteRow {
                    service: r.get(0)?,
                    minute_ms: r.get(1)?,
                    probes: r.get(2)?,
                    p50_ms: r.get(3)?,
                    p99_ms: r.get(4)?,
                    max_ms: r.get(5)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(|e| classify(&self.name, e))
    }

    fn prune(&mut self, before_ms: i64, max_rows: u64) -> Result<u64, StoreError> {
        let name = self.name.clone();
        let fail = |e| classify(&name, e);
        let tx = self.connection.transaction().map_err(fail)?;
        let mut gone = tx
            .execute("DELETE FROM transitions WHERE at_ms < ?1", [before_ms])
            .map_err(fail)? as u64;
        tx.execute("DELETE FROM latency WHERE minute_ms < ?1", [before_ms])
            .map_err(fail)?;
        let crowded: Vec<String> = tx
            .prepare("SELECT service FROM transitions GROUP BY service HAVING count(*) > ?1")
            .map_err(fail)?
            .query_map([max_rows as i64], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(fail)?;
        for service in crowded {
            gone += tx
                .execute(
                    "DELETE FROM transitions WHERE service = ?1 AND id IN (
                       SELECT id FROM transitions WHERE service = ?1
                       ORDER BY at_ms DESC, id DESC LIMIT -1 OFFSET ?2)",
                    params![service, max_rows as i64],
                )
                .map_err(fail)? as u64;
        }
        tx.commit().map_err(fail)?;
        Ok(gone)
    }

    fn unclean_stop(&mut self) -> Result<Option<UncleanStop>, StoreError> {
        if self.meta("clean")? != Some(0) {
            return Ok(None);
        }
        let Some(alive) = self.meta("alive_ms")? else {
            return Ok(None);
        };
        let mut query = self
            .connection
            .prepare(
                "SELECT service, to_status FROM transitions t
                 WHERE id = (SELECT max(id) FROM transitions WHERE service = t.service)",
            )
            .map_err(|e| classify(&self.name, e))?;
        let last = query
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(|e| classify(&self.name, e))?;
        Ok(Some(UncleanStop {
            alive_ms: alive,
            last,
        }))
    }

    fn mark(&mut self, clean: bool) -> Result<(), StoreError> {
        self.connection
            .execute(
                "INSERT INTO meta (key, value) VALUES ('clean', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [i64::from(clean)],
            )
            .map(drop)
            .map_err(|e| self.error(e))
    }
}

#[async_trait::async_trait]
impl Store for Sqlite {
    fn describe(&self) -> String {
        self.name.clone()
    }

    async fn write(&self, batch: &Batch) -> Result<Written, StoreError> {
        // One instance, no fleet: the shared statuses are the registry's alone.
        let batch = batch.clone();
        self.run(move |db| db.write(&batch)).await?;
        Ok(Written::default())
    }

    async fn transitions(
        &self,
        service: &str,
        span: Range<i64>,
        limit: usize,
    ) -> Result<(Vec<Row>, bool), StoreError> {
        let service = service.to_owned();
        self.run(move |db| db.transitions(&service, span, limit))
            .await
    }

    async fn timeline(&self, service: &str, span: Range<i64>) -> Result<Vec<Row>, StoreError> {
        let service = service.to_owned();
        self.run(move |db| db.timeline(&service, span)).await
    }

    async fn first_ms(&self, service: &str) -> Result<Option<i64>, StoreError> {
        let service = service.to_owned();
        self.run(move |db| db.first_ms(&service)).await
    }

    async fn minutes(&self, service: &str, since_ms: i64) -> Result<Vec<MinuteRow>, StoreError> {
        let service = service.to_owned();
        self.run(move |db| db.minutes(&service, since_ms)).await
    }

    async fn prune(&self, before_ms: i64, max_rows: u64) -> Result<u64, StoreError> {
        self.run(move |db| db.prune(before_ms, max_rows)).await
    }

    async fn unclean_stop(&self) -> Result<Option<UncleanStop>, StoreError> {
        self.run(Database::unclean_stop).await
    }

    async fn mark(&self, clean: bool) -> Result<(), StoreError> {
        self.run(move |db| db.mark(clean)).await
    }
}

/// Moves a history file that cannot be used out of the way (with its log), so a
/// fresh one can start; returns where it went.
pub fn move_aside(path: &Path, now_ms: i64) -> std::io::Result<PathBuf> {
    let aside = PathBuf::from(format!("{}.unusable-{now_ms}", path.display()));
    std::fs::rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let log = PathBuf::from(format!("{}{suffix}", path.display()));
        if log.exists() {
            std::fs::rename(&log, format!("{}{suffix}", aside.display()))?;
        }
    }
    Ok(aside)
}
