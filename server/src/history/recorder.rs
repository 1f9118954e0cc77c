//! What hears the registry ([`Recorder`], an [`Observer`]) and the thread that
//! writes what it heard, once a second, in one transaction.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, mpsc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use healthweb_proto::{history::Cause, pb::health_check_response::ServingStatus};

use super::{
    FLUSH_EVERY, History, HistorySettings, ROWS_PER_FLUSH, now_ms,
    store::{MinuteRow, Row},
    uptime::worse,
};
use crate::{
    monitor::ProbeObserver,
    registry::{Observer, Reason},
};

/// Latency samples kept per upstream per minute; a faster prober's extra samples
/// are not summarised (a probe every 6 ms is not a health check).
const SAMPLES_PER_MINUTE: usize = 10_000;

/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// With nothing to write, the last sign of life is still written this often.
const ALIVE_EVERY: Duration = Duration::from_secs(10);

/// Changes and latency heard since the last write.
#[derive(Default)]
struct Pending {
    rows: Vec<Row>,
    /// Per service: rows this second, and the index of its last one in `rows`.
    seen: HashMap<String, (usize, usize)>,
    /// Per (upstream, minute start): latency samples in milliseconds.
    latency: HashMap<(String, i64), Vec<f32>>,
}

/// Hears every change and every probe latency, and keeps them for the writer.
#[derive(Default)]
pub struct Recorder {
    pending: Mutex<Pending>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl Observer for Recorder {
    fn changed(&self, service: &str, from: ServingStatus, to: ServingStatus, reason: Reason<'_>) {
        let now = now_ms();
        let mut pending = self.lock();
        let Pending { rows, seen, .. } = &mut *pending;
        match seen.get_mut(service) {
            Some((count, last)) if *count >= ROWS_PER_FLUSH => {
                let row = &mut rows[*last];
                row.to = to as i32;
                row.until_ms = now;
                row.worst = worse(row.worst, to as i32);
                row.count += 1;
            }
            entry => {
                rows.push(Row {
                    service: service.to_owned(),
                    at_ms: now,
                    until_ms: now,
                    from: from as i32,
                    to: to as i32,
                    worst: to as i32,
                    cause: reason.cause as i32,
                    detail: reason.detail.chars().take(512).collect(),
                    count: 1,
                });
                let last = rows.len() - 1;
                match entry {
                    Some((count, index)) => {
                        *count += 1;
                        *index = last;
                    }
                    None => {
                        seen.insert(service.to_owned(), (1, last));
                    }
                }
            }
        }
    }
}

impl ProbeObserver for Recorder {
    fn probed(&self, upstream: &str, latency: Duration) {
        self.latency(upstream, latency);
    }
}

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Every critical section is a push or a swap.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One probe of `service` took `latency`.
    pub fn latency(&self, service: &str, latency: Duration) {
        let minute = now_ms() / 60_000 * 60_000;
        let mut pending = self.lock();
        let samples = pending
            .latency
            .entry((service.to_owned(), minute))
            .or_default();
        if samples.len() < SAMPLES_PER_MINUTE {
            samples.push(latency.as_secs_f32() * 1000.0);
        }
    }

    /// Takes what was heard: the rows, and a summary of every minute with samples
    /// (closed minutes leave; the current one stays to gather more).
    fn take(&self) -> (Vec<Row>, Vec<MinuteRow>) {
        let current = now_ms() / 60_000 * 60_000;
        let mut pending = self.lock();
        pending.seen.clear();
        let rows = std::mem::take(&mut pending.rows);
        let mut minutes = Vec::new();
        pending.latency.retain(|(service, minute), samples| {
            minutes.push(summary(service, *minute, samples));
            *minute >= current
        });
        (rows, minutes)
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

/// The writer thread; [`Writer::stop`] writes what is left and marks a clean stop.
pub struct Writer {
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    /// Notes an unclean last stop in `history`, then starts the thread that writes
    /// what this recorder hears.
    pub fn start(
        self: &Arc<Self>,
        history: &History,
        settings: &HistorySettings,
    ) -> Result<Writer, super::StoreError> {
        {
            let mut store = history.store();
            if let Some(super::store::UncleanStop {
                alive_ms: alive,
                last,
            }) = store.unclean_stop()?
            {
                let rows: Vec<Row> = last
                    .into_iter()
                    .filter(|(_, status)| {
                        *status != ServingStatus::Unknown as i32
                            && *status != ServingStatus::ServiceUnknown as i32
                    })
                    .map(|(service, status)| Row {
                        service,
                        at_ms: alive,
                        until_ms: alive,
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
                store.append(&rows, &[], alive)?;
            }
            store.mark(false)?;
        }
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn({
                let (recorder, history, settings) =
                    (self.clone(), history.clone(), settings.clone());
                move || write_loop(&recorder, &history, &settings, &stopped)
            })
            .map_err(|e| super::StoreError::Database(format!("cannot start the writer: {e}")))?;
        Ok(Writer {
            stop,
            thread: Some(thread),
        })
    }
}

fn write_loop(
    recorder: &Recorder,
    history: &History,
    settings: &HistorySettings,
    stopped: &mpsc::Receiver<()>,
) {
    let mut pruned = Instant::now() - PRUNE_EVERY;
    let mut alive = Instant::now();
    loop {
        let stopping = !matches!(
            stopped.recv_timeout(FLUSH_EVERY),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        let (rows, minutes) = recorder.take();
        let mut store = history.store();
        if !rows.is_empty() || !minutes.is_empty() || alive.elapsed() >= ALIVE_EVERY || stopping {
            match store.append(&rows, &minutes, now_ms()) {
                Ok(()) => alive = Instant::now(),
                Err(error) => tracing::error!(%error, lost = rows.len(), "history write failed"),
            }
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = Instant::now();
            let before = now_ms() - settings.retention.as_millis() as i64;
            if let Err(error) = store.prune(before, settings.max_rows) {
                tracing::error!(%error, "history prune failed");
            }
        }
        if stopping {
            if let Err(error) = store.mark(true) {
                tracing::error!(%error, "could not mark the history's clean stop");
            }
            return;
        }
    }
}

impl Writer {
    /// Writes what is pending, marks a clean stop, and waits for the thread.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::HealthRegistry;

    #[test]
    fn a_flapping_service_is_folded_with_a_count() {
        let recorder = Arc::new(Recorder::default());
        let registry = HealthRegistry::observed(vec![recorder.clone()]);
        for i in 0..1000 {
            let status = if i % 2 == 0 {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            };
            registry.set("flap", status).unwrap();
        }
        registry.set("calm", ServingStatus::Serving).unwrap();
        let (rows, _) = recorder.take();
        let flap: Vec<_> = rows.iter().filter(|r| r.service == "flap").collect();
        assert_eq!(flap.len(), ROWS_PER_FLUSH);
        assert_eq!(flap.iter().map(|r| r.count).sum::<u32>(), 1000);
        let last = flap.last().unwrap();
        assert_eq!(last.to, ServingStatus::Serving as i32);
        assert_eq!(last.worst, ServingStatus::NotServing as i32);
        assert_eq!(rows.iter().filter(|r| r.service == "calm").count(), 1);
        // The next second starts afresh.
        registry.set("flap", ServingStatus::NotServing).unwrap();
        assert_eq!(recorder.take().0.len(), 1);
    }

    #[test]
    fn latency_is_summarised_a_minute_at_a_time() {
        let recorder = Recorder::default();
        for ms in 1..=100 {
            recorder.latency("up", Duration::from_millis(ms));
        }
        let (_, minutes) = recorder.take();
        assert_eq!(minutes.len(), 1);
        let m = &minutes[0];
        assert_eq!((m.probes, m.max_ms.round()), (100, 100.0));
        assert!(
            (50.0..=51.0).contains(&m.p50_ms) && (98.0..=100.0).contains(&m.p99_ms),
            "{m:?}"
        );
    }
}
