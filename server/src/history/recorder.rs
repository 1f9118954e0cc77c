//! What hears the registry ([`Recorder`], an [`Observer`]) and the task that
//! writes what it heard ([`Writer`]).
//!
//! The recorder is a journal: every change becomes a row (tagged with this
//! replica and an event id) and, for a fleet-wide service, the service's latest
//! status for the other replicas. The writer takes what is pending as one batch
//! as soon as something is, writes it in one transaction and, when the store
//! cannot be reached, gives it back: the journal then keeps it, up to a bound,
//! until the store returns (retried with backoff). A row is written again, never
//! twice, if its batch is retried or if it took more folded changes.
//!
//! Folding: past [`ROWS_PER_WINDOW`] rows of one service within [`FOLD_WINDOW`],
//! further changes join the last row with a count and their worst status.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    hash::BuildHasher,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use healthweb_client::backoff::jitter;
use healthweb_proto::{history::Cause, pb::health_check_response::ServingStatus};
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{
    FOLD_WINDOW, HistorySettings, ROWS_PER_WINDOW, StoreError, now_ms,
    state::StoreState,
    store::{Batch, MinuteRow, Row, Shared, Store, UncleanStop},
    uptime::worse,
};
use crate::{
    monitor::ProbeObserver,
    registry::{Observer, Origin, Reason},
};

/// Latency samples kept per upstream per minute; a faster prober's extra samples
/// are not summarised (a probe every 6 ms is not a health check).
const SAMPLES_PER_MINUTE: usize = 10_000;

/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// With nothing to write, the last sign of life is still written this often.
const ALIVE_EVERY: Duration = Duration::from_secs(10);

/// The least time between two writes: the changes of a burst share one.
const WRITE_GAP: Duration = Duration::from_millis(25);

/// How long a stopping writer keeps trying to write what is left.
const LAST_WRITE: Duration = Duration::from_secs(3);

/// Retry backoff while the store is away: from the first to the last, doubling.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_LAST: Duration = Duration::from_secs(10);

/// Who records, and which changes are its to record and to share.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The replica every row is tagged with.
    pub replica: String,
    /// This process's random id ([`instance_id`]): event ids start with it.
    pub instance: String,
    /// Whether replicas share the store: then every service but `""` is
    /// fleet-wide, its changes go to the other replicas, and a change heard from
    /// them is theirs to record.
    pub fleet: bool,
}

impl Scope {
    /// (record it, share it) for a change of `service` from `origin`.
    fn decide(&self, service: &str, origin: Origin) -> (bool, bool) {
        let fleet_wide = self.fleet && !service.is_empty();
        match origin {
            // The replica that saw it recorded it.
            Origin::Fleet => (false, false),
            // This instance's drain is its own: in a fleet, only its "" records it.
            Origin::Drain => (!fleet_wide, false),
            Origin::Here => (true, fleet_wide),
        }
    }
}

/// Event ids: this process's random id and a counter, unique for ever.
#[derive(Debug)]
struct EventIds {
    instance: String,
    next: AtomicU64,
}

impl EventIds {
    fn new(instance: &str) -> Self {
        Self {
            instance: instance.to_owned(),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> String {
        format!(
            "{}-{}",
            self.instance,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// A random id for this process: 64 bits from the hasher std seeds from the OS.
pub fn instance_id() -> String {
    let seed = (std::process::id(), now_ms(), Instant::now());
    format!(
        "{:016x}",
        std::collections::hash_map::RandomState::new().hash_one(seed)
    )
}

/// One service's current fold window.
struct Window {
    opened: Instant,
    rows: usize,
    /// Its last row: queued at this index of `Journal::rows`...
    queued: Option<usize>,
    /// ...or, once taken, a copy, for later changes to join.
    taken: Option<Row>,
}

/// What is waiting to be written.
#[derive(Default)]
struct Journal {
    /// Rows heard since the last take.
    rows: Vec<Row>,
    windows: HashMap<String, Window>,
    /// Fleet-wide services' latest statuses since the last take.
    shared: BTreeMap<String, Shared>,
    /// Per (upstream, minute start): latency samples in milliseconds.
    latency: HashMap<(String, i64), Vec<f32>>,
    /// A batch the store did not take, kept for the next try.
    retry: Batch,
    /// Services whose shared status is being written now.
    inflight: BTreeSet<String>,
    /// Services whose fleet status was heard while this replica's own was not
    /// written yet: read again once it is.
    deferred: BTreeSet<String>,
}

/// Hears every change and every probe latency, and keeps them for the writer.
pub struct Recorder {
    journal: Mutex<Journal>,
    wake: Notify,
    scope: Scope,
    ids: EventIds,
    /// The most rows kept while the store is away.
    limit: usize,
    state: StoreState,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl Observer for Recorder {
    fn changed(&self, service: &str, from: ServingStatus, to: ServingStatus, reason: Reason<'_>) {
        let (record, share) = self.scope.decide(service, reason.origin);
        if !record {
            return;
        }
        let now = now_ms();
        let detail: String = reason.detail.chars().take(512).collect();
        let mut journal = self.lock();
        let Journal { rows, windows, .. } = &mut *journal;
        let window = windows
            .get_mut(service)
            .filter(|w| w.opened.elapsed() < FOLD_WINDOW);
        let new_event = match window {
            Some(window) if window.rows >= ROWS_PER_WINDOW => {
                let index = match window.queued {
                    Some(index) => index,
                    None => {
                        // Written already: this change joins a copy, written again.
                        rows.push(window.taken.take().expect("a taken window keeps its row"));
                        window.queued = Some(rows.len() - 1);
                        rows.len() - 1
                    }
                };
                let row = &mut rows[index];
                row.to = to as i32;
                row.until_ms = now;
                row.worst = worse(row.worst, to as i32);
                row.count += 1;
                None
            }
            window => {
                let event = self.ids.next();
                rows.push(Row {
                    event: event.clone(),
                    replica: self.scope.replica.clone(),
                    service: service.to_owned(),
                    at_ms: now,
                    until_ms: now,
                    from: from as i32,
                    to: to as i32,
                    worst: to as i32,
                    cause: reason.cause as i32,
                    detail: detail.clone(),
                    count: 1,
                });
                let queued = Some(rows.len() - 1);
                match window {
                    Some(window) => {
                        window.rows += 1;
                        (window.queued, window.taken) = (queued, None);
                    }
                    None => {
                        let opened = Instant::now();
                        let window = Window {
                            opened,
                            rows: 1,
                            queued,
                            taken: None,
                        };
                        windows.insert(service.to_owned(), window);
                    }
                }
                Some(event)
            }
        };
        if share {
            let registers = new_event.filter(|_| from == ServingStatus::ServiceUnknown);
            let shared = Shared {
                service: service.to_owned(),
                status: to as i32,
                changed_ms: now,
                cause: reason.cause as i32,
                detail,
                registers,
            };
            merge_shared(&mut journal.shared, shared);
        }
        drop(journal);
        self.wake.notify_one();
    }
}

/// Puts `newer` in `map`, over an older status of the same service: the newer
/// status wins, and a registration not yet stored stays one.
fn merge_shared(map: &mut BTreeMap<String, Shared>, mut newer: Shared) {
    if let Some(older) = map.remove(&newer.service) {
        newer.registers = older.registers.or(newer.registers);
    }
    map.insert(newer.service.clone(), newer);
}

impl ProbeObserver for Recorder {
    fn probed(&self, upstream: &str, latency: Duration) {
        self.latency(upstream, latency);
    }
}

impl Recorder {
    /// A recorder for `scope`, keeping at most `limit` rows while the store is
    /// away, telling `state` how it goes.
    pub fn new(scope: Scope, limit: usize, state: StoreState) -> Self {
        let ids = EventIds::new(&scope.instance);
        Self {
            journal: Mutex::default(),
            wake: Notify::new(),
            scope,
            ids,
            limit: limit.max(1),
            state,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Journal> {
        // Every critical section is a push, a swap or a merge.
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One probe of `service` took `latency`.
    pub fn latency(&self, service: &str, latency: Duration) {
        let minute = now_ms() / 60_000 * 60_000;
        let mut journal = self.lock();
        let samples = journal
            .latency
            .entry((service.to_owned(), minute))
            .or_default();
        if samples.len() < SAMPLES_PER_MINUTE {
            samples.push(latency.as_secs_f32() * 1000.0);
        }
    }

    /// Whether `service` has a status of this replica's that the store has not
    /// acknowledged yet: the fleet's may be older, and must not replace it now. If
    /// so, the service is read again once this replica's status is written (the
    /// fleet's may also be newer).
    pub fn defers(&self, service: &str) -> bool {
        let mut journal = self.lock();
        let local = journal.shared.contains_key(service)
            || journal.retry.shared.iter().any(|s| s.service == service)
            || journal.inflight.contains(service);
        if local {
            journal.deferred.insert(service.to_owned());
        }
        local
    }

    /// Whether any fleet-wide status of this replica's is not written yet.
    pub fn has_shared(&self) -> bool {
        let journal = self.lock();
        !journal.shared.is_empty()
            || !journal.retry.shared.is_empty()
            || !journal.inflight.is_empty()
    }

    /// Takes everything to write: what a failed write left, then what was heard
    /// since (a row's latest copy wins), and a summary of every minute with
    /// samples (closed minutes leave; the current one stays to gather more).
    fn take(&self) -> Batch {
        let current = now_ms() / 60_000 * 60_000;
        let mut journal = self.lock();
        let Journal {
            rows,
            windows,
            shared,
            latency,
            retry,
            inflight,
            ..
        } = &mut *journal;
        windows.retain(|_, window| {
            if let Some(index) = window.queued.take() {
                window.taken = Some(rows[index].clone());
            }
            window.opened.elapsed() < FOLD_WINDOW
        });
        let mut batch = std::mem::take(retry);
        let newer: BTreeSet<&str> = rows.iter().map(|r| r.event.as_str()).collect();
        batch.rows.retain(|r| !newer.contains(r.event.as_str()));
        batch.rows.append(rows);
        let mut statuses: BTreeMap<String, Shared> = batch
            .shared
            .drain(..)
            .map(|s| (s.service.clone(), s))
            .collect();
        for status in std::mem::take(shared).into_values() {
            merge_shared(&mut statuses, status);
        }
        batch.shared = statuses.into_values().collect();
        *inflight = batch.shared.iter().map(|s| s.service.clone()).collect();
        let mut minutes: BTreeMap<(String, i64), MinuteRow> = batch
            .minutes
            .drain(..)
            .map(|m| ((m.service.clone(), m.minute_ms), m))
            .collect();
        latency.retain(|(service, minute), samples| {
            minutes.insert(
                (service.clone(), *minute),
                summary(service, *minute, samples),
            );
            *minute >= current
        });
        batch.minutes = minutes.into_values().collect();
        batch.alive_ms = now_ms();
        batch
    }

    /// The store took what was taken; returns the services to read again from
    /// the fleet (heard while this replica's own status was being written).
    fn done(&self) -> Vec<String> {
        let mut journal = self.lock();
        journal.inflight.clear();
        self.state.buffered(0);
        if journal.shared.is_empty() && journal.retry.shared.is_empty() {
            std::mem::take(&mut journal.deferred).into_iter().collect()
        } else {
            Vec::new()
        }
    }

    /// The store did not take `batch`: keep it for the next try, dropping the
    /// oldest rows past the limit. Returns how many were dropped.
    fn failed(&self, mut batch: Batch) -> usize {
        let mut journal = self.lock();
        journal.inflight.clear();
        let over = batch.rows.len().saturating_sub(self.limit);
        batch.rows.drain(..over);
        let minutes_over = batch.minutes.len().saturating_sub(self.limit);
        batch.minutes.drain(..minutes_over);
        self.state.buffered(batch.rows.len());
        journal.retry = batch;
        over
    }
}

fn summary(service: &str, minute_ms: i64, samples: &[f32]) -> MinuteRow {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f32::total_cmp);
    let at = |p: f64| f64::from(sorted[((sorted.len() - 1) as f64 * p).round() as usize]);
    MinuteRow {
        service: service.to_owned(),
        minute_ms,
        probes: sorted.len() as u32,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    }
}

/// The writer task; [`Writer::stop`] writes what is left and marks a clean stop.
pub struct Writer {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        // A server dropped without running still writes what it heard, and lets go.
        self.stop.cancel();
    }
}

impl Writer {
    /// Writes what is pending (for a few seconds at most, if the store is away),
    /// marks a clean stop, and waits for the task.
    pub async fn stop(mut self) {
        self.stop.cancel();
        let _ = (&mut self.task).await;
    }
}

/// Services whose fleet status this replica must read again (see
/// [`crate::fleet`]): the store refused this replica's (the fleet's stands), or the
/// fleet's was heard while this replica's was being written.
pub type Reread = tokio::sync::mpsc::UnboundedSender<Vec<String>>;

impl Recorder {
    /// Notes an unclean last stop in `store`, marks it in use, then starts the
    /// task that writes what this recorder hears. A store that cannot be used is
    /// an error; one that cannot be reached now is tried again by the task, which
    /// keeps what it hears meanwhile.
    pub async fn start(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        settings: &HistorySettings,
        reread: Option<Reread>,
    ) -> Result<Writer, StoreError> {
        let opened = match self.open(&*store).await {
            Ok(()) => true,
            Err(error) if error.is_transient() => {
                self.state.down(&error, self.limit);
                false
            }
            Err(error) => return Err(error),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(
            Task {
                recorder: self.clone(),
                store,
                settings: settings.clone(),
                reread,
                opened,
            }
            .run(stop.clone()),
        );
        Ok(Writer { stop, task })
    }

    /// Records how the last run ended, if uncleanly, and marks the store in use.
    async fn open(&self, store: &dyn Store) -> Result<(), StoreError> {
        if let Some(UncleanStop { alive_ms, last }) = store.unclean_stop().await? {
            let rows = last
                .into_iter()
                .filter(|(_, status)| {
                    *status != ServingStatus::Unknown as i32
                        && *status != ServingStatus::ServiceUnknown as i32
                })
                .map(|(service, status)| Row {
                    event: self.ids.next(),
                    replica: self.scope.replica.clone(),
                    service,
                    at_ms: alive_ms,
                    until_ms: alive_ms,
                    from: status,
                    to: ServingStatus::Unknown as i32,
                    worst: ServingStatus::Unknown as i32,
                    cause: Cause::UncleanStop as i32,
                    detail: "healthweb stopped without shutting down (killed?); \
                             its last sign of life"
                        .into(),
                    count: 1,
                })
                .collect();
            let batch = Batch {
                rows,
                alive_ms,
                ..Batch::default()
            };
            store.write(&batch).await?;
        }
        store.mark(false).await
    }
}

/// The writer task's state.
struct Task {
    recorder: Arc<Recorder>,
    store: Arc<dyn Store>,
    settings: HistorySettings,
    reread: Option<Reread>,
    /// Whether the unclean-stop check and the mark are done.
    opened: bool,
}

impl Task {
    async fn run(mut self, stop: CancellationToken) {
        let mut pruned = Instant::now() - PRUNE_EVERY;
        let mut alive = Instant::now();
        let mut retry = RETRY_FIRST;
        // While the store is away: when to try again.
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut written = tokio::time::Instant::now();
        loop {
            let next = retry_at.unwrap_or_else(|| tokio::time::Instant::now() + ALIVE_EVERY);
            let stopping = tokio::select! {
                () = self.recorder.wake.notified() => false,
                () = tokio::time::sleep_until(next) => false,
                () = stop.cancelled() => true,
            };
            if stopping {
                return self.last_write().await;
            }
            if retry_at.is_some_and(|at| tokio::time::Instant::now() < at) {
                // Still away: keep what came, within the limit, and wait on.
                self.keep(self.recorder.take());
                continue;
            }
            tokio::time::sleep_until(written + WRITE_GAP).await;
            let batch = self.recorder.take();
            if batch.is_empty() && alive.elapsed() < ALIVE_EVERY && retry_at.is_none() {
                let deferred = self.recorder.done();
                self.reread(deferred);
                continue;
            }
            written = tokio::time::Instant::now();
            match self.write(batch).await {
                Ok(()) => {
                    alive = Instant::now();
                    retry_at = None;
                    retry = RETRY_FIRST;
                }
                Err(()) => {
                    retry_at = Some(tokio::time::Instant::now() + jitter(retry, 0.2));
                    retry = (retry * 2).min(RETRY_LAST);
                    continue;
                }
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = Instant::now();
                let before = now_ms() - self.settings.retention.as_millis() as i64;
                let prune = self.store.prune(before, self.settings.max_rows);
                match tokio::time::timeout(self.settings.timeout, prune).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => tracing::warn!(%error, "history prune failed"),
                    Err(_) => tracing::warn!("history prune timed out"),
                }
            }
        }
    }

    /// One attempt at `batch`: written, or kept for the next.
    async fn write(&mut self, batch: Batch) -> Result<(), ()> {
        let attempt = async {
            if !self.opened {
                self.recorder.open(&*self.store).await?;
                self.opened = true;
            }
            self.store.write(&batch).await
        };
        let result = match tokio::time::timeout(self.settings.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unreachable(format!(
                "{} did not answer within {}",
                self.store.describe(),
                humantime::format_duration(self.settings.timeout)
            ))),
        };
        match result {
            Ok(written) => {
                let mut reread = self.recorder.done();
                self.recorder.state.up(batch.rows.len());
                reread.extend(written.refused);
                self.reread(reread);
                Ok(())
            }
            Err(error) => {
                self.recorder.state.down(&error, self.recorder.limit);
                self.keep(batch);
                Err(())
            }
        }
    }

    /// Asks the fleet's listener to read `services` again.
    fn reread(&self, services: Vec<String>) {
        if let (Some(reread), false) = (&self.reread, services.is_empty()) {
            let _ = reread.send(services);
        }
    }

    /// Keeps `batch` for later, saying once per outage that rows are dropped.
    fn keep(&self, batch: Batch) {
        let dropped = self.recorder.failed(batch);
        self.recorder.state.dropped(dropped, self.recorder.limit);
    }

    /// The shutdown: the rest written (the store gets a few seconds), the stop
    /// marked clean.
    async fn last_write(mut self) {
        let deadline = tokio::time::Instant::now() + LAST_WRITE;
        loop {
            let batch = self.recorder.take();
            if self.write(batch).await.is_ok() {
                break;
            }
            if tokio::time::Instant::now() + RETRY_FIRST >= deadline {
                let lost = self.recorder.take().rows.len();
                tracing::error!(
                    lost,
                    store = %self.store.describe(),
                    "stopping with history the store never took: these changes are lost"
                );
                return;
            }
            tokio::time::sleep(RETRY_FIRST).await;
        }
        match tokio::time::timeout(self.settings.timeout, self.store.mark(true)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "could not mark the history's clean stop"),
            Err(_) => tracing::error!("could not mark the history's clean stop: timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::HealthRegistry;

    fn recorder(limit: usize) -> Arc<Recorder> {
        let scope = Scope {
            replica: "test".into(),
            instance: instance_id(),
            fleet: false,
        };
        Arc::new(Recorder::new(scope, limit, StoreState::default()))
    }

    fn flip(registry: &HealthRegistry, service: &str, times: usize) {
        for i in 0..times {
            let status = if i % 2 == 0 {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            };
            registry.set(service, status).unwrap();
        }
    }

    #[test]
    fn a_flapping_service_is_folded_with_a_count() {
        let recorder = recorder(1000);
        let registry = HealthRegistry::observed(vec![recorder.clone()]);
        flip(&registry, "flap", 1000);
        registry.set("calm", ServingStatus::Serving).unwrap();
        let rows = recorder.take().rows;
        let flap: Vec<_> = rows.iter().filter(|r| r.service == "flap").collect();
        assert_eq!(flap.len(), ROWS_PER_WINDOW);
        assert_eq!(flap.iter().map(|r| r.count).sum::<u32>(), 1000);
        let last = flap.last().unwrap();
        assert_eq!(last.to, ServingStatus::Serving as i32);
        assert_eq!(last.worst, ServingStatus::NotServing as i32);
        assert_eq!(rows.iter().filter(|r| r.service == "calm").count(), 1);
        recorder.done();
        // Within the same window, more changes join the row already written: it
        // is written again, with the same event id and a higher count.
        flip(&registry, "flap", 4);
        let again = recorder.take().rows;
        assert_eq!(again.len(), 1, "{again:?}");
        assert_eq!(again[0].event, last.event);
        assert_eq!(again[0].count, last.count + 4);
    }

    #[test]
    fn a_failed_batch_is_kept_within_the_limit_and_never_doubled() {
        let recorder = recorder(5);
        let registry = HealthRegistry::observed(vec![recorder.clone()]);
        for i in 0..4 {
            registry
                .set(&format!("s{i}"), ServingStatus::Serving)
                .unwrap();
        }
        let first = recorder.take();
        assert_eq!(first.rows.len(), 5, "the whole server and s0..s3");
        assert_eq!(recorder.failed(first.clone()), 0);
        for i in 4..7 {
            registry
                .set(&format!("s{i}"), ServingStatus::Serving)
                .unwrap();
        }
        let second = recorder.take();
        assert_eq!(second.rows.len(), 8);
        assert_eq!(second.rows[..5], first.rows[..], "the kept rows come first");
        // Past the limit, the oldest go.
        assert_eq!(recorder.failed(second), 3);
        let third = recorder.take();
        let services: Vec<_> = third.rows.iter().map(|r| r.service.as_str()).collect();
        assert_eq!(services, ["s2", "s3", "s4", "s5", "s6"]);
        let mut events: Vec<_> = third.rows.iter().map(|r| &r.event).collect();
        events.dedup();
        assert_eq!(events.len(), 5);
    }

    #[test]
    fn fleet_wide_changes_are_shared_and_the_fleets_are_not_recorded() {
        let scope = Scope {
            replica: "a".into(),
            instance: instance_id(),
            fleet: true,
        };
        let recorder = Arc::new(Recorder::new(scope, 100, StoreState::default()));
        let registry = HealthRegistry::observed(vec![recorder.clone()]);
        registry.set("api", ServingStatus::Serving).unwrap();
        registry.set("api", ServingStatus::NotServing).unwrap();
        let heard = Reason {
            origin: Origin::Fleet,
            ..Reason::of(Cause::Admin)
        };
        registry
            .set_because("db", ServingStatus::Serving, heard)
            .unwrap();
        registry.shutdown();
        assert!(recorder.defers("api") && !recorder.defers("db"));
        let batch = recorder.take();
        let rows: Vec<_> = batch
            .rows
            .iter()
            .map(|r| (r.service.as_str(), r.to))
            .collect();
        let (serving, not) = (
            ServingStatus::Serving as i32,
            ServingStatus::NotServing as i32,
        );
        // "" is this instance's own: its start and its drain are recorded; api's
        // drain is not (the fleet's api did not change), db is the fleet's.
        assert_eq!(
            rows,
            [("", serving), ("api", serving), ("api", not), ("", not)]
        );
        assert_eq!(batch.shared.len(), 1);
        let api = &batch.shared[0];
        assert_eq!((api.service.as_str(), api.status), ("api", not));
        assert_eq!(
            api.registers.as_deref(),
            Some(batch.rows[1].event.as_str()),
            "api was new here: registered only if the fleet does not know it"
        );
        assert!(recorder.defers("api"), "in flight until acknowledged");
        assert_eq!(recorder.done(), ["api"], "then read again from the fleet");
        assert!(!recorder.defers("api"));
    }

    #[test]
    fn latency_is_summarised_a_minute_at_a_time() {
        let recorder = recorder(10);
        for ms in 1..=100 {
            recorder.latency("up", Duration::from_millis(ms));
        }
        let minutes = recorder.take().minutes;
        assert_eq!(minutes.len(), 1);
        let m = &minutes[0];
        assert_eq!((m.probes, m.max_ms.round()), (100, 100.0));
        assert!(
            (50.0..=51.0).contains(&m.p50_ms) && (98.0..=100.0).contains(&m.p99_ms),
            "{m:?}"
        );
    }
}
