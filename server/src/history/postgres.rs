//! The PostgreSQL store (tokio-postgres, pooled by deadpool-postgres, TLS by
//! rustls through tokio-postgres-rustls), which replicas share.
//!
//! - Every table is named `healthweb_*`; the schema is versioned in
//!   `healthweb_schema`, one migration per file in `server/migrations/postgres/`,
//!   applied under an advisory lock so that replicas starting together migrate
//!   once. A database from a newer healthweb is refused, never rewritten.
//! - A write is one transaction: the fleet-wide statuses (an older change never
//!   overwrites a newer one; a registration only if the fleet does not know the
//!   service), the rows (upserted by event id), the latency minutes, the sign of
//!   life, and a `NOTIFY healthweb_status` naming the services that changed, so
//!   every replica's Watch hears of it (see [`crate::fleet`]).
//! - `""` is each replica's own: its rows are read back for that replica only.
//! - The URL is libpq's (`postgres://user@host:port/db?sslmode=require`), and so
//!   are its TLS rules: `sslrootcert`, `sslcert`, `sslkey` are understood; the
//!   server's certificate is verified when a CA is given or with
//!   `sslmode=verify-ca|verify-full` (against the system's roots without a CA),
//!   and `prefer` (the default) and `require` encrypt without verifying. The
//!   password comes from the URL, a file, or the environment, and is never printed.

use std::{
    collections::BTreeSet,
    ops::Range,
    path::{Path, PathBuf},
    time::Duration,
};

use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, Timeouts,
};
use futures_util::StreamExt;
use healthweb_client::native::{TlsSettings, client_config};
use tokio::sync::{OnceCell, mpsc};
use tokio_postgres::{AsyncMessage, Client, Config, Notification, error::SqlState};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::store::{Batch, MinuteRow, Row, Store, StoreError, UncleanStop, Written};

mod alerts;

/// The migrations, in order; `healthweb_schema` holds the versions applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_replicas.sql"),
    include_str!("../../migrations/postgres/0002_alerts.sql"),
];

/// Advisory lock keys: migrating, pruning.
const MIGRATE_LOCK: i64 = 0x6865_616c_7468_7701;
const PRUNE_LOCK: i64 = 0x6865_616c_7468_7702;

/// The channel that names the fleet-wide services that changed.
pub const STATUS_CHANNEL: &str = "healthweb_status";
/// The channel that says a replica came or went, or gave leases back.
pub const FLEET_CHANNEL: &str = "healthweb_fleet";

/// A NOTIFY payload stays under PostgreSQL's 8000 bytes.
const PAYLOAD: usize = 7000;

/// Connections in the pool: the writer, the fleet's heartbeat, and readers.
const POOL_SIZE: usize = 6;

/// Where the database is and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// `postgres://` or `postgresql://`, as libpq has it.
    pub url: String,
    /// A file whose first line is the password (wins over the URL's).
    pub password_file: Option<PathBuf>,
    /// The password, from the environment (wins over the URL's).
    pub password: Option<String>,
    /// TLS: the CA to verify the server with (the system's roots otherwise), a
    /// client certificate, or no verification at all.
    pub tls: TlsSettings,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &redact(&self.url))
            .field("password_file", &self.password_file)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .finish()
    }
}

impl PgSettings {
    /// Whether `text` names a PostgreSQL database rather than a file.
    pub fn is_url(text: &str) -> bool {
        text.starts_with("postgres://") || text.starts_with("postgresql://")
    }
}

/// `url` with its password, if any, replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_owned(),
    }
}

/// libpq's URL options tokio-postgres does not know, taken out: `sslrootcert`,
/// `sslcert` and `sslkey` into `tls`, `sslmode=verify-ca|verify-full` as
/// `require`. And libpq's rule for the certificate: verified when a CA is given
/// or the mode says `verify-` (then against the system's roots if no CA is
/// given); otherwise (`prefer`, the default, and `require`) the connection is
/// encrypted without verifying, as libpq does, so that a server with a
/// self-signed certificate (Debian's default) is reachable as with `psql`.
fn libpq_options(url: &str, tls: &mut TlsSettings) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = form_urlencoded::Serializer::new(String::new());
    let mut verify = false;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let file = || Some(PathBuf::from(value.as_ref()));
        match key.as_ref() {
            "sslrootcert" => tls.ca = tls.ca.take().or_else(file),
            "sslcert" => tls.cert = tls.cert.take().or_else(file),
            "sslkey" => tls.key = tls.key.take().or_else(file),
            "sslmode" if value.starts_with("verify-") => {
                verify = true;
                kept.append_pair("sslmode", "require");
            }
            _ => {
                kept.append_pair(&key, &value);
            }
        }
    }
    if !verify && tls.ca.is_none() {
        tls.insecure_skip_verify = true;
    }
    match kept.finish() {
        query if query.is_empty() => base.to_owned(),
        query => format!("{base}?{query}"),
    }
}

/// The history in PostgreSQL, for the replica `replica` (this process: `instance`).
pub struct Postgres {
    pool: Pool,
    config: Config,
    tls: MakeRustlsConnect,
    described: String,
    replica: String,
    instance: String,
    timeout: Duration,
    migrated: OnceCell<()>,
}

impl Postgres {
    /// Checks `settings` (the URL, the password file, the TLS files) and builds
    /// the pool; connects only when first used ([`Postgres::ready`]).
    pub fn new(
        settings: &PgSettings,
        replica: &str,
        instance: &str,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let mut tls = settings.tls.clone();
        let url = libpq_options(&settings.url, &mut tls);
        let mut config: Config = url.parse().map_err(|e| {
            StoreError::Refused(format!(
                "cannot use --history {}: {}",
                redact(&settings.url),
                chain(&e)
            ))
        })?;
        if let Some(file) = &settings.password_file {
            config.password(password_from(file)?);
        } else if let Some(password) = &settings.password {
            config.password(password.as_str());
        }
        if config.get_application_name().is_none() {
            config.application_name("healthweb");
        }
        config
            .connect_timeout(timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            // Unacknowledged data for this long drops the connection: a partition
            // is found, not waited out.
            .tcp_user_timeout(timeout);
        let described = describe(&config);
        let tls = MakeRustlsConnect::new(
            client_config(&tls).map_err(|e| StoreError::Refused(format!("{described}: {e}")))?,
        );
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(timeout),
                create: Some(timeout),
                recycle: Some(timeout),
            })
            .build()
            .map_err(|e| StoreError::Refused(format!("{described}: {e}")))?;
        Ok(Self {
            pool,
            config,
            tls,
            described,
            replica: replica.to_owned(),
            instance: instance.to_owned(),
            timeout,
            migrated: OnceCell::new(),
        })
    }

    /// Connects and migrates: an error says whether the settings are wrong
    /// ([`StoreError::Refused`]) or the database is away for now.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.client().await.map(drop)
    }

    /// This process's id, as the fleet knows it.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The replica's name.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// How long a connection or a query may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A pooled connection to a migrated database.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        let mut client = self.pool.get().await.map_err(|e| self.pool_error(e))?;
        self.migrated
            .get_or_try_init(|| migrate(&mut client, &self.described))
            .await?;
        Ok(client)
    }

    /// What went wrong with a query, classified.
    pub(crate) fn error(&self, error: &tokio_postgres::Error) -> StoreError {
        classify(&self.described, error)
    }

    fn pool_error(&self, error: PoolError) -> StoreError {
        match error {
            PoolError::Backend(error) => self.error(&error),
            PoolError::Timeout(_) => StoreError::Unreachable(format!(
                "{}: no connection within {}",
                self.described,
                humantime::format_duration(self.timeout)
            )),
            other => StoreError::Database(format!("{}: {other}", self.described)),
        }
    }

    /// A connection of its own that hears `channels` (LISTEN): the client, and
    /// the notifications as they come; the receiver ends when the connection does.
    pub(crate) async fn listen(
        &self,
        channels: &[&str],
    ) -> Result<(Client, mpsc::UnboundedReceiver<Notification>), StoreError> {
        let (client, mut connection) =
            tokio::time::timeout(self.timeout, self.config.connect(self.tls.clone()))
                .await
                .map_err(|_| {
                    StoreError::Unreachable(format!("{}: connect timed out", self.described))
                })?
                .map_err(|e| self.error(&e))?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let AsyncMessage::Notification(notification) = message
                    && tx.send(notification).is_err()
                {
                    break;
                }
            }
        });
        let listen: String = channels.iter().map(|c| format!("LISTEN {c};")).collect();
        client
            .batch_execute(&listen)
            .await
            .map_err(|e| self.error(&e))?;
        Ok((client, rx))
    }
}

/// The first line of `file`: a password.
fn password_from(file: &Path) -> Result<String, StoreError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        StoreError::Refused(format!(
            "cannot read the password file {}: {e}",
            file.display()
        ))
    })?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(StoreError::Refused(format!(
            "the password file {} has no password on its first line",
            file.display()
        )));
    }
    Ok(line.to_owned())
}

/// `postgres://user@host:port/db`: the config, without its password.
fn describe(config: &Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

/// An error and its causes, joined.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Wrong settings are refused (retrying cannot help); a database that is away,
/// starting or shutting down is unreachable (retrying can).
fn classify(described: &str, error: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = error.as_db_error() {
        let message = format!("{described}: {} ({})", db.message(), db.code().code());
        let code = db.code();
        return if [
            SqlState::INVALID_PASSWORD,
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            SqlState::INVALID_CATALOG_NAME,
            SqlState::INSUFFICIENT_PRIVILEGE,
        ]
        .contains(code)
        {
            StoreError::Refused(message)
        } else if [
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::CONNECTION_FAILURE,
        ]
        .contains(code)
        {
            StoreError::Unreachable(message)
        } else {
            StoreError::Database(message)
        };
    }
    let message = format!("{described}: {}", chain(error));
    let kind = error.to_string();
    if [
        "error performing TLS handshake",
        "authentication error",
        "invalid configuration",
    ]
    .contains(&kind.as_str())
    {
        StoreError::Refused(message)
    } else {
        StoreError::Unreachable(message)
    }
}

/// Applies the migrations this database lacks, once, whoever else starts now.
async fn migrate(
    client: &mut deadpool_postgres::Object,
    described: &str,
) -> Result<(), StoreError> {
    let fail = |e: tokio_postgres::Error| classify(described, &e);
    let tx = client.transaction().await.map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(fail)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS healthweb_schema (
           version    INTEGER PRIMARY KEY,
           applied_ms BIGINT  NOT NULL)",
    )
    .await
    .map_err(fail)?;
    let version: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM healthweb_schema",
            &[],
        )
        .await
        .map_err(fail)?
        .get(0);
    let latest = MIGRATIONS.len() as i32;
    if version > latest {
        return Err(StoreError::Newer(
            described.to_owned(),
            version.into(),
            latest.into(),
        ));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(migration).await.map_err(fail)?;
        tx.execute(
            "INSERT INTO healthweb_schema (version, applied_ms) VALUES ($1, $2)",
            &[&(i as i32 + 1), &super::now_ms()],
        )
        .await
        .map_err(fail)?;
    }
    tx.commit().await.map_err(fail)
}

const COLUMNS: &str = "event_id, replica, service, at_ms, until_ms, from_status, to_status, \
                       worst, cause, detail, count";

fn row(r: &tokio_postgres::Row) -> Row {
    Row {
        event: r.get(0),
        replica: r.get(1),
        service: r.get(2),
        at_ms: r.get(3),
        until_ms: r.get(4),
        from: r.get(5),
        to: r.get(6),
        worst: r.get(7),
        cause: r.get(8),
        detail: r.get(9),
        count: u32::try_from(r.get::<_, i64>(10)).unwrap_or(u32::MAX),
    }
}

/// The services named in `names`, as NOTIFY payloads of at most [`PAYLOAD`]
/// bytes, one name a line (a longer name alone asks every replica to read all).
fn payloads<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut payloads: Vec<String> = Vec::new();
    for name in names {
        let name = if name.len() >= PAYLOAD || name.contains('\n') {
            "*"
        } else {
            name
        };
        match payloads.last_mut() {
            Some(last) if last.len() + name.len() < PAYLOAD => {
                last.push('\n');
                last.push_str(name);
            }
            _ => payloads.push(name.to_owned()),
        }
    }
    payloads
}

#[async_trait::async_trait]
impl Store for Postgres {
    fn describe(&self) -> String {
        self.described.clone()
    }

    async fn write(&self, batch: &Batch) -> Result<Written, StoreError> {
        let fail = |e: tokio_postgres::Error| self.error(&e);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(fail)?;
        let mut refused = Vec::new();
        let mut changed = BTreeSet::new();
        for registering in [true, false] {
            let shared: Vec<_> = batch
                .shared
                .iter()
                .filter(|s| s.registers.is_some() == registering)
                .collect();
            if shared.is_empty() {
                continue;
            }
            // A registration takes a service the fleet does not know (or removed);
            // a change takes it unless the fleet's is newer.
            let condition = if registering {
                "healthweb_statuses.status = 3"
            } else {
                "healthweb_statuses.changed_ms <= excluded.changed_ms"
            };
            let statement = tx
                .prepare_cached(&format!(
                    "INSERT INTO healthweb_statuses (service, status, changed_ms, cause, detail, replica)
                     SELECT s.*, $6::text
                     FROM unnest($1::text[], $2::int4[], $3::int8[], $4::int4[], $5::text[]) AS s
                     ON CONFLICT (service) DO UPDATE SET
                       status = excluded.status, changed_ms = excluded.changed_ms,
                       cause = excluded.cause, detail = excluded.detail, replica = excluded.replica
                     WHERE {condition}
                     RETURNING service"
                ))
                .await
                .map_err(fail)?;
            let services: Vec<&str> = shared.iter().map(|s| s.service.as_str()).collect();
            let statuses: Vec<i32> = shared.iter().map(|s| s.status).collect();
            let times: Vec<i64> = shared.iter().map(|s| s.changed_ms).collect();
            let causes: Vec<i32> = shared.iter().map(|s| s.cause).collect();
            let details: Vec<&str> = shared.iter().map(|s| s.detail.as_str()).collect();
            let taken: BTreeSet<String> = tx
                .query(
                    &statement,
                    &[
                        &services,
                        &statuses,
                        &times,
                        &causes,
                        &details,
                        &self.replica,
                    ],
                )
                .await
                .map_err(fail)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for s in shared {
                if taken.contains(&s.service) {
                    changed.insert(s.service.clone());
                } else {
                    refused.push(s);
                }
            }
        }
        // A registration the fleet refused was no change: its row goes too.
        let unrecorded: BTreeSet<&str> = refused
            .iter()
            .filter_map(|s| s.registers.as_deref())
            .collect();
        let rows: Vec<&Row> = batch
            .rows
            .iter()
            .filter(|r| !unrecorded.contains(r.event.as_str()))
            .collect();
        if !rows.is_empty() {
            let statement = tx
                .prepare_cached(&format!(
                    "INSERT INTO healthweb_transitions ({COLUMNS})
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[],
                       $5::int8[], $6::int4[], $7::int4[], $8::int4[], $9::int4[], $10::text[],
                       $11::int8[])
                     ON CONFLICT (event_id) DO UPDATE SET
                       until_ms = excluded.until_ms, to_status = excluded.to_status,
                       worst = excluded.worst, count = excluded.count"
                ))
                .await
                .map_err(fail)?;
            let text = |f: fn(&Row) -> &str| rows.iter().map(|r| f(r)).collect::<Vec<&str>>();
            let long = |f: fn(&Row) -> i64| rows.iter().map(|r| f(r)).collect::<Vec<i64>>();
            let int = |f: fn(&Row) -> i32| rows.iter().map(|r| f(r)).collect::<Vec<i32>>();
            tx.execute(
                &statement,
                &[
                    &text(|r| &r.event),
                    &text(|r| &r.replica),
                    &text(|r| &r.service),
                    &long(|r| r.at_ms),
                    &long(|r| r.until_ms),
                    &int(|r| r.from),
                    &int(|r| r.to),
                    &int(|r| r.worst),
                    &int(|r| r.cause),
                    &text(|r| &r.detail),
                    &long(|r| i64::from(r.count)),
                ],
            )
            .await
            .map_err(fail)?;
        }
        if !batch.minutes.is_empty() {
            let statement = tx
                .prepare_cached(
                    "INSERT INTO healthweb_latency
                       (service, minute_ms, probes, p50_ms, p99_ms, max_ms, replica)
                     SELECT m.*, $7::text FROM unnest($1::text[], $2::int8[], $3::int8[],
                       $4::float8[], $5::float8[], $6::float8[]) AS m
                     ON CONFLICT (service, minute_ms, replica) DO UPDATE SET
                       probes = excluded.probes, p50_ms = excluded.p50_ms,
                       p99_ms = excluded.p99_ms, max_ms = excluded.max_ms",
                )
                .await
                .map_err(fail)?;
            let m = &batch.minutes;
            let services: Vec<&str> = m.iter().map(|m| m.service.as_str()).collect();
            let minutes: Vec<i64> = m.iter().map(|m| m.minute_ms).collect();
            let probes: Vec<i64> = m.iter().map(|m| i64::from(m.probes)).collect();
            let p50: Vec<f64> = m.iter().map(|m| m.p50_ms).collect();
            let p99: Vec<f64> = m.iter().map(|m| m.p99_ms).collect();
            let max: Vec<f64> = m.iter().map(|m| m.max_ms).collect();
            tx.execute(
                &statement,
                &[
                    &services,
                    &minutes,
                    &probes,
                    &p50,
                    &p99,
                    &max,
                    &self.replica,
                ],
            )
            .await
            .map_err(fail)?;
        }
        tx.execute(
            "UPDATE healthweb_replicas SET alive_ms = $2 WHERE instance = $1",
            &[&self.instance, &batch.alive_ms],
        )
        .await
        .map_err(fail)?;
        for payload in payloads(changed.iter().map(String::as_str)) {
            tx.execute("SELECT pg_notify($1, $2)", &[&STATUS_CHANNEL, &payload])
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(Written {
            refused: refused.into_iter().map(|s| s.service.clone()).collect(),
        })
    }

    async fn transitions(
        &self,
        service: &str,
        span: Range<i64>,
        limit: usize,
    ) -> Result<(Vec<Row>, bool), StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM healthweb_transitions
                     WHERE service = $1 AND ($1 <> '' OR replica = $2)
                       AND at_ms >= $3 AND at_ms < $4
                     ORDER BY at_ms DESC, id DESC LIMIT $5"
                ),
                &[
                    &service,
                    &self.replica,
                    &span.start,
                    &span.end,
                    &(limit as i64 + 1),
                ],
            )
            .await
            .map_err(|e| self.error(&e))?;
        let mut rows: Vec<Row> = rows.iter().map(row).collect();
        let truncated = rows.len() > limit;
        rows.truncate(limit);
        Ok((rows, truncated))
    }

    async fn timeline(&self, service: &str, span: Range<i64>) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "(SELECT {COLUMNS}, id FROM healthweb_transitions
                      WHERE service = $1 AND ($1 <> '' OR replica = $2) AND at_ms < $3
                      ORDER BY at_ms DESC, id DESC LIMIT 1)
                     UNION ALL
                     (SELECT {COLUMNS}, id FROM healthweb_transitions
                      WHERE service = $1 AND ($1 <> '' OR replica = $2)
                        AND at_ms >= $3 AND at_ms < $4)
                     ORDER BY at_ms, id"
                ),
                &[&service, &self.replica, &span.start, &span.end],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(rows.iter().map(row).collect())
    }

    async fn first_ms(&self, service: &str) -> Result<Option<i64>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT min(at_ms) FROM healthweb_transitions
                 WHERE service = $1 AND ($1 <> '' OR replica = $2)",
                &[&service, &self.replica],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(row.get(0))
    }

    async fn minutes(&self, service: &str, since_ms: i64) -> Result<Vec<MinuteRow>, StoreError> {
        let client = self.client().await?;
        // A minute in which the probing moved from one replica to another has a
        // row from each: their probes add up, the median is weighted by them, and
        // the 99th percentile and the slowest are the larger.
        let rows = client
            .query(
                "SELECT minute_ms, sum(probes)::int8,
                   (sum(p50_ms * probes) / greatest(sum(probes), 1))::float8,
                   max(p99_ms), max(max_ms)
                 FROM healthweb_latency WHERE service = $1 AND minute_ms >= $2
                 GROUP BY minute_ms ORDER BY minute_ms",
                &[&service, &since_ms],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(rows
            .iter()
            .map(|r| MinuteRow {
                service: service.to_owned(),
                minute_ms: r.get(0),
                probes: u32::try_from(r.get::<_, i64>(1)).unwrap_or(u32::MAX),
                p50_ms: r.get(2),
                p99_ms: r.get(3),
                max_ms: r.get(4),
            })
            .collect())
    }

    async fn prune(&self, before_ms: i64, max_rows: u64) -> Result<u64, StoreError> {
        let fail = |e: tokio_postgres::Error| self.error(&e);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(fail)?;
        // One replica prunes at a time; the others find the work done.
        let mine: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&PRUNE_LOCK])
            .await
            .map_err(fail)?
            .get(0);
        if !mine {
            return Ok(0);
        }
        let mut gone = tx
            .execute(
                "DELETE FROM healthweb_transitions WHERE at_ms < $1",
                &[&before_ms],
            )
            .await
            .map_err(fail)?;
        tx.execute(
            "DELETE FROM healthweb_latency WHERE minute_ms < $1",
            &[&before_ms],
        )
        .await
        .map_err(fail)?;
        gone += tx
            .execute(
                "DELETE FROM healthweb_transitions t USING (
                   SELECT id FROM (
                     SELECT id, row_number() OVER (
                       PARTITION BY service ORDER BY at_ms DESC, id DESC) AS n
                     FROM healthweb_transitions WHERE service IN (
                       SELECT service FROM healthweb_transitions
                       GROUP BY service HAVING count(*) > $1)) ranked
                   WHERE n > $1) old
                 WHERE t.id = old.id",
                &[&(max_rows as i64)],
            )
            .await
            .map_err(fail)?;
        // Processes gone for longer than history is kept, and their leases.
        tx.execute(
            "DELETE FROM healthweb_replicas WHERE alive_ms < $1 AND expires_at < now()",
            &[&before_ms],
        )
        .await
        .map_err(fail)?;
        tx.execute(
            "DELETE FROM healthweb_leases WHERE expires_at < now() - interval '1 hour'",
            &[],
        )
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(gone)
    }

    async fn unclean_stop(&self) -> Result<Option<UncleanStop>, StoreError> {
        let fail = |e: tokio_postgres::Error| self.error(&e);
        let client = self.client().await?;
        // An earlier process of this replica that never said it stopped.
        let alive: Option<i64> = client
            .query_one(
                "SELECT max(alive_ms) FROM healthweb_replicas
                 WHERE name = $1 AND instance <> $2 AND NOT clean AND expires_at < now()",
                &[&self.replica, &self.instance],
            )
            .await
            .map_err(fail)?
            .get(0);
        let Some(alive_ms) = alive else {
            return Ok(None);
        };
        let last = client
            .query(
                "SELECT service, to_status FROM healthweb_transitions
                 WHERE service = '' AND replica = $1 ORDER BY at_ms DESC, id DESC LIMIT 1",
                &[&self.replica],
            )
            .await
            .map_err(fail)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        Ok(Some(UncleanStop { alive_ms, last }))
    }

    async fn mark(&self, clean: bool) -> Result<(), StoreError> {
        let fail = |e: tokio_postgres::Error| self.error(&e);
        let client = self.client().await?;
        if clean {
            client
                .execute(
                    "UPDATE healthweb_replicas SET clean = true,
                       expires_at = least(expires_at, now())
                     WHERE instance = $1",
                    &[&self.instance],
                )
                .await
                .map_err(fail)?;
            return Ok(());
        }
        // This process joins; earlier ones of the same replica are done with.
        client
            .execute(
                "DELETE FROM healthweb_replicas
                 WHERE name = $1 AND instance <> $2 AND expires_at < now()",
                &[&self.replica, &self.instance],
            )
            .await
            .map_err(fail)?;
        client
            .execute(
                "INSERT INTO healthweb_replicas
                   (instance, name, started_ms, alive_ms, expires_at, clean)
                 VALUES ($1, $2, $3, $3, now(), false)
                 ON CONFLICT (instance) DO UPDATE SET clean = false",
                &[&self.instance, &self.replica, &super::now_ms()],
            )
            .await
            .map_err(fail)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://hw:s3cr%40t@db.example:5432/status?sslmode=require"),
            "postgres://hw:***@db.example:5432/status?sslmode=require"
        );
        assert_eq!(redact("postgres://hw@db/x"), "postgres://hw@db/x");
        let settings = PgSettings {
            url: "postgres://hw:hunter2@db/x".into(),
            password_file: None,
            password: Some("hunter3".into()),
            tls: TlsSettings::default(),
        };
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter"), "{debug}");
    }

    #[test]
    fn libpq_options_become_tls_settings() {
        let mut tls = TlsSettings::default();
        let url = libpq_options(
            "postgres://hw@db/x?sslmode=verify-full&sslrootcert=/ca.pem&application_name=a",
            &mut tls,
        );
        assert_eq!(url, "postgres://hw@db/x?sslmode=require&application_name=a");
        assert_eq!(tls.ca, Some(PathBuf::from("/ca.pem")));
        assert!(!tls.insecure_skip_verify);
        // As libpq: without a CA, require and prefer encrypt but do not verify;
        // verify-full does, against the system's roots.
        for (url, verified) in [
            ("postgres://db/x", false),
            ("postgres://db/x?sslmode=require", false),
            ("postgres://db/x?sslmode=verify-full", true),
        ] {
            let mut tls = TlsSettings::default();
            libpq_options(url, &mut tls);
            assert_eq!(tls.insecure_skip_verify, !verified, "{url}");
        }
    }

    #[test]
    fn notify_payloads_stay_small() {
        let long = "x".repeat(PAYLOAD);
        let names = ["a", "b", long.as_str(), "c"];
        assert_eq!(payloads(names), ["a\nb\n*\nc"]);
        let many: Vec<String> = (0..2000).map(|i| format!("service-{i}")).collect();
        let sent = payloads(many.iter().map(String::as_str));
        assert!(sent.len() > 1 && sent.iter().all(|p| p.len() <= PAYLOAD));
        assert_eq!(sent.iter().map(|p| p.lines().count()).sum::<usize>(), 2000);
    }
}
