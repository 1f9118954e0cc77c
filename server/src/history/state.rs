//! How the history store is doing, said once in the log and always in
//! `/metrics` and on the page (`GET /instance`): up or away (since when, and
//! why), how many changes are kept in memory meanwhile, how many were dropped
//! past the limit, and whether the history fell back to memory because its
//! default file could not be used.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};
use serde::Serialize;

use super::{StoreError, now_ms};

/// The store's health, shared by the writer, `/metrics` and `/instance`.
#[derive(Debug, Clone, Default)]
pub struct StoreState(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    up: AtomicBool,
    buffered: AtomicU64,
    dropped: AtomicU64,
    report: Mutex<Report>,
}

/// The store's health, as `/instance` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// `sqlite`, `postgres` or `memory`.
    pub kind: &'static str,
    /// Where: a file, or the database's host, port and name (never a password).
    pub location: String,
    /// Whether the last write (or the open) succeeded.
    pub up: bool,
    /// Why history is in memory although no one asked for it: the default
    /// file could not be used.
    pub fallback: Option<String>,
    /// Since when the store is away, Unix milliseconds.
    pub down_since_ms: Option<i64>,
    /// What the store said last, while it is away.
    pub error: Option<String>,
    /// Changes kept in memory for the store.
    pub buffered: u64,
    /// Changes dropped since start because more were kept than the limit.
    pub dropped: u64,
    /// Whether the limit was reached during this outage (said once).
    #[serde(skip)]
    full: bool,
}

impl StoreState {
    fn report(&self) -> std::sync::MutexGuard<'_, Report> {
        self.0.report.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The store is open: `kind` at `location`, in memory for `fallback` if set.
    pub fn opened(&self, kind: &'static str, location: String, fallback: Option<String>) {
        let mut report = self.report();
        report.kind = kind;
        report.location = location;
        report.fallback = fallback;
        report.up = true;
        self.0.up.store(true, Ordering::Relaxed);
    }

    /// A write succeeded, with `written` rows.
    pub fn up(&self, written: usize) {
        let mut report = self.report();
        if let Some(since) = report.down_since_ms.take() {
            let away = humantime::format_duration(std::time::Duration::from_millis(
                (now_ms() - since).max(0) as u64 / 1000 * 1000,
            ));
            tracing::warn!(
                store = %report.location,
                written,
                "the history store is back after {away}: the changes kept meanwhile are written"
            );
        }
        report.up = true;
        report.error = None;
        report.full = false;
        self.0.up.store(true, Ordering::Relaxed);
    }

    /// A write failed with `error`; at most `limit` changes are kept meanwhile.
    /// Said once an outage.
    pub fn down(&self, error: &StoreError, limit: usize) {
        let mut report = self.report();
        if report.down_since_ms.is_none() {
            report.down_since_ms = Some(now_ms());
            tracing::error!(
                store = %report.location,
                "the history store cannot be reached ({error}): Health goes on; up to \
                 {limit} changes are kept in memory (--history-buffer) and written when \
                 it returns; retrying with backoff"
            );
        } else {
            tracing::debug!(%error, "the history store is still away");
        }
        report.up = false;
        report.error = Some(error.to_string());
        self.0.up.store(false, Ordering::Relaxed);
    }

    /// `n` rows are kept for the store.
    pub fn buffered(&self, n: usize) {
        self.0.buffered.store(n as u64, Ordering::Relaxed);
    }

    /// `n` rows were dropped past `limit`; said once an outage.
    pub fn dropped(&self, n: usize, limit: usize) {
        if n == 0 {
            return;
        }
        self.0.dropped.fetch_add(n as u64, Ordering::Relaxed);
        let mut report = self.report();
        if !std::mem::replace(&mut report.full, true) {
            tracing::error!(
                limit,
                "the history store is still away and {limit} changes are kept: the oldest \
                 are dropped from now on (--history-buffer)"
            );
        }
    }

    /// Whether the last write succeeded.
    pub fn is_up(&self) -> bool {
        self.0.up.load(Ordering::Relaxed)
    }

    /// Everything, as `/instance` shows it.
    pub fn snapshot(&self) -> Report {
        let mut report = self.report().clone();
        report.buffered = self.0.buffered.load(Ordering::Relaxed);
        report.dropped = self.0.dropped.load(Ordering::Relaxed);
        report
    }
}

impl Collector for StoreState {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let report = self.snapshot();
        let gauges = [
            (
                "healthweb_history_store_up",
                "1 while the history store takes writes, 0 while it is away",
                i64::from(report.up),
            ),
            (
                "healthweb_history_buffered_changes",
                "Changes kept in memory until the history store takes them",
                report.buffered as i64,
            ),
            (
                "healthweb_history_memory_fallback",
                "1 when the default history file could not be used and history is kept in memory only",
                i64::from(report.fallback.is_some()),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            let described = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(described)?;
        }
        let dropped = ConstCounter::new(report.dropped);
        let described = encoder.encode_descriptor(
            "healthweb_history_dropped_changes",
            "Changes dropped because the history store was away and the buffer was full",
            None,
            dropped.metric_type(),
        )?;
        dropped.encode(described)
    }
}
