//! Every status change, remembered: heard from the registry as it is made,
//! written by one task in one transaction as soon as it is heard, kept across
//! restarts in SQLite (one instance) or PostgreSQL (replicas sharing one truth),
//! pruned by age and count, and read back for the History service, the badges
//! and the page.
//!
//! Recording never slows a Check, and Health never waits on the store: Check
//! does not change statuses, and a change only appends to a short list under a
//! lock. While the store is away the writer keeps the changes in memory, up to
//! a limit, and writes them when it returns. A service flapping faster than
//! [`ROWS_PER_WINDOW`] changes in [`FOLD_WINDOW`] is folded: the rest join the
//! window's last row with a count and their worst status.
//!
//! Where history goes ([`Location`]): by default a file in the state directory
//! ([`default_file`]), and memory when that cannot be used (said on stderr, on
//! the page and in `/metrics`); a file named with `--history PATH`, refused at
//! start if it cannot be used; memory; or a PostgreSQL database.
//!
//! # Layout
//! - `store`: the [`Store`] trait and its rows; `alert_store`: the alerts' part
//!   of a store ([`AlertStore`]: alert states, the outbox, maintenance windows).
//! - `sqlite`, `postgres`: the two stores.
//! - `recorder`: what hears the registry, and the writer task.
//! - `state`: how the store is doing, for `/metrics` and the page.
//! - `uptime`: windows and buckets from a timeline.
//! - `service`: the `healthweb.v1.History` gRPC service.

pub mod alert_store;
pub mod postgres;
pub mod recorder;
pub mod service;
pub mod sqlite;
pub mod state;
pub mod store;
pub mod uptime;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use healthweb_client::native::TlsSettings;

pub use alert_store::AlertStore;
pub use postgres::{PgSettings, Postgres};
pub use recorder::Recorder;
pub use state::StoreState;
pub use store::{MinuteRow, Row, Store, StoreError};

/// At most this many rows per service per fold window; more changes are folded.
pub const ROWS_PER_WINDOW: usize = 8;

/// The fold window: a service's first change opens one, for this long.
pub const FOLD_WINDOW: Duration = Duration::from_secs(1);

/// Where history is kept.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// The default: [`default_file`], or memory if it cannot be used (said so).
    Default,
    /// Only in memory, lost at exit.
    Memory,
    /// An SQLite file, named explicitly: if it cannot be used, the server refuses
    /// to start.
    File(PathBuf),
    /// A PostgreSQL database (a `postgres://` URL), which replicas share.
    Postgres(String),
}

impl Location {
    /// `memory`, a `postgres://` (or `postgresql://`) URL, or a file.
    pub fn parse(text: &str) -> Self {
        if text == "memory" {
            Self::Memory
        } else if PgSettings::is_url(text) {
            Self::Postgres(text.to_owned())
        } else {
            Self::File(PathBuf::from(text))
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => f.write_str("Default"),
            Self::Memory => f.write_str("Memory"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&postgres::redact(url))
                .finish(),
        }
    }
}

/// A password: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Where history lives, how long it is kept, and how long the store may be away.
#[derive(Debug, Clone)]
pub struct HistorySettings {
    /// Where.
    pub location: Location,
    /// For PostgreSQL: a file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// For PostgreSQL: the password (from the environment).
    pub password: Option<Secret>,
    /// For PostgreSQL: TLS (the CA to verify the server with, a client certificate).
    pub tls: TlsSettings,
    /// Rows older than this are pruned.
    pub retention: Duration,
    /// Each service keeps at most this many rows (its newest).
    pub max_rows: u64,
    /// Move a file that cannot be used (corrupt, or from a newer healthweb) aside
    /// and start afresh, instead of refusing to start.
    pub move_aside: bool,
    /// While the store is away, at most this many changes are kept in memory;
    /// past it the oldest are dropped.
    pub buffer: usize,
    /// How long a connection or a query may take before the store counts as away.
    pub timeout: Duration,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            location: Location::Default,
            password_file: None,
            password: None,
            tls: TlsSettings::default(),
            retention: Duration::from_secs(30 * 24 * 3600),
            max_rows: 100_000,
            move_aside: false,
            buffer: 100_000,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The store, for the readers.
#[derive(Clone)]
pub struct History {
    store: Arc<dyn Store>,
    alerts: Arc<dyn AlertStore>,
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

/// The default history file: in `$STATE_DIRECTORY` (what systemd sets for a
/// service with `StateDirectory=healthweb`: `/var/lib/healthweb`), else in
/// `$XDG_STATE_HOME/healthweb`, else in `~/.local/state/healthweb`.
pub fn default_file() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let dir = if let Some(dirs) = var("STATE_DIRECTORY") {
        // systemd passes one directory per StateDirectory= entry, `:`-separated.
        let first = dirs.to_string_lossy().split(':').next()?.to_owned();
        PathBuf::from(first)
    } else if let Some(state) = var("XDG_STATE_HOME").map(PathBuf::from)
        && state.is_absolute()
    {
        state.join("healthweb")
    } else {
        PathBuf::from(var("HOME")?).join(".local/state/healthweb")
    };
    Some(dir.join("history.db"))
}

/// An opened store, and what it is.
pub struct Opened {
    /// The store, for the writer and the readers.
    pub history: History,
    /// The PostgreSQL store, for the replicas' coordination; `None` otherwise.
    pub postgres: Option<Arc<Postgres>>,
}

impl History {
    /// Opens the store `settings` name, for the replica `replica` (this process:
    /// `instance`), and tells `state` what it is. A store named explicitly that
    /// cannot be used is an error (or, with `move_aside`, a file moved aside for
    /// a fresh one); the default file falls back to memory; a database that
    /// cannot be reached now is opened anyway and tried again by the writer.
    pub async fn open(
        settings: &HistorySettings,
        replica: &str,
        instance: &str,
        state: &StoreState,
    ) -> Result<Opened, StoreError> {
        let sqlite = |store: sqlite::Sqlite, fallback: Option<String>| {
            let kind = if store.describe() == "memory" {
                "memory"
            } else {
                "sqlite"
            };
            state.opened(kind, store.describe(), fallback);
            let store = Arc::new(store);
            Opened {
                history: History {
                    store: store.clone(),
                    alerts: store,
                },
                postgres: None,
            }
        };
        match &settings.location {
            Location::Memory => Ok(sqlite(sqlite::Sqlite::memory()?, None)),
            Location::File(path) => Ok(sqlite(open_file(path, settings.move_aside).await?, None)),
            Location::Default => {
                let opened = match default_file() {
                    None => Err("neither $XDG_STATE_HOME nor $HOME is set".to_owned()),
                    Some(path) => match create_dir(&path) {
                        Err(error) => Err(format!("cannot use {}: {error}", path.display())),
                        Ok(()) => open_file(&path, settings.move_aside)
                            .await
                            .map_err(|e| e.to_string()),
                    },
                };
                Ok(match opened {
                    Ok(store) => sqlite(store, None),
                    Err(why) => {
                        tracing::warn!(
                            "history is kept in memory only, and lost at exit: {why} \
                             (--history PATH names a file, --history memory says this is meant)"
                        );
                        sqlite(sqlite::Sqlite::memory()?, Some(why))
                    }
                })
            }
            Location::Postgres(url) => {
                let pg = PgSettings {
                    url: url.clone(),
                    password_file: settings.password_file.clone(),
                    password: settings.password.as_ref().map(|p| p.0.clone()),
                    tls: settings.tls.clone(),
                };
                let store = Arc::new(Postgres::new(&pg, replica, instance, settings.timeout)?);
                state.opened("postgres", store.describe(), None);
                match store.ready().await {
                    Ok(()) => {}
                    Err(error) if error.is_transient() => state.down(&error, settings.buffer),
                    Err(error) => return Err(error),
                }
                Ok(Opened {
                    history: History {
                        store: store.clone(),
                        alerts: store.clone(),
                    },
                    postgres: Some(store),
                })
            }
        }
    }

    /// A history in memory only (for a program that assembles the routes itself).
    pub fn memory() -> Result<Self, StoreError> {
        let store = Arc::new(sqlite::Sqlite::memory()?);
        Ok(Self {
            store: store.clone(),
            alerts: store,
        })
    }

    /// The store, for a query.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The store, for the writer.
    pub fn shared(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The store's alert tables, for the alerts.
    pub fn alerts(&self) -> Arc<dyn AlertStore> {
        self.alerts.clone()
    }
}

fn create_dir(file: &Path) -> std::io::Result<()> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir),
        _ => Ok(()),
    }
}

/// Opens the SQLite file at `path` (on the blocking pool: SQLite checks it
/// whole), moving an unusable one aside first if asked to.
async fn open_file(path: &Path, move_aside: bool) -> Result<sqlite::Sqlite, StoreError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || match sqlite::Sqlite::open(&path) {
        Err(error @ (StoreError::Corrupt(..) | StoreError::Newer(..))) if move_aside => {
            let aside = sqlite::move_aside(&path, now_ms()).map_err(|e| {
                StoreError::Database(format!("cannot move {} aside: {e}", path.display()))
            })?;
            tracing::warn!(%error, aside = %aside.display(), "history moved aside; starting afresh");
            sqlite::Sqlite::open(&path)
        }
        other => other,
    })
    .await
    .map_err(|e| StoreError::Database(format!("opening the history stopped: {e}")))?
}
