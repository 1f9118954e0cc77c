//! Maintenance windows: while one covers a service its statuses are recorded as
//! ever, but its alerts are held (an alert still due when the window ends
//! fires then). Windows come from the config file, recurring in a time zone:
//!
//! ```toml
//! [[maintenance]]
//! name = "nightly"
//! services = ["db-*"]                 # names and glob patterns
//! start = "02:00"                     # local time of day, or an RFC 3339 instant (once)
//! duration = "1h"
//! time_zone = "Europe/Paris"          # an IANA name (default UTC)
//! days = ["sat", "sun"]               # default: every day
//! ```
//!
//! and from the admin API (`POST /maintenance`), kept in the history store so
//! that every replica holds the same alerts.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tz::{DateTime, TimeZone};

use super::config::ServiceGlob;
use crate::{
    history::{
        StoreError,
        alert_store::{AdHocWindow, AlertStore},
        now_ms,
    },
    upstream::duration,
};

const DAY_MS: i64 = 24 * 3600 * 1000;
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// When a configured window starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Every chosen day at this local time (minutes after midnight).
    Daily(u32),
    /// Once, at this instant (Unix milliseconds).
    Once(i64),
}

/// A `[[maintenance]]` window of the config file, checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawWindow")]
pub struct Scheduled {
    /// Its name, as the admin API lists it.
    pub name: String,
    services: Vec<ServiceGlob>,
    start: Start,
    duration: Duration,
    zone: TimeZone,
    /// By `week_day` (0: Sunday).
    days: [bool; 7],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    name: String,
    services: Vec<ServiceGlob>,
    start: String,
    #[serde(deserialize_with = "duration")]
    duration: Duration,
    time_zone: Option<String>,
    days: Option<Vec<String>>,
}

impl TryFrom<RawWindow> for Scheduled {
    type Error = String;

    fn try_from(raw: RawWindow) -> Result<Self, String> {
        let name = raw.name;
        let fail = |problem: String| format!("maintenance {name:?}: {problem}");
        if raw.services.is_empty() {
            return Err(fail("name the services it covers".into()));
        }
        let zone_name = raw.time_zone.as_deref().unwrap_or("UTC");
        let zone = TimeZone::from_posix_tz(zone_name)
            .map_err(|e| fail(format!("unknown time_zone {zone_name:?} ({e})")))?;
        let start = match raw.start.split_once(':') {
            Some((h, m)) if raw.start.len() <= 5 => {
                let (h, m): (u32, u32) = h
                    .parse()
                    .ok()
                    .zip(m.parse().ok())
                    .filter(|(h, m)| *h < 24 && *m < 60)
                    .ok_or_else(|| fail(format!("bad start {:?}: write HH:MM", raw.start)))?;
                Start::Daily(h * 60 + m)
            }
            _ => {
                let at = humantime::parse_rfc3339_weak(&raw.start).map_err(|e| {
                    fail(format!(
                        "bad start {:?} ({e}): write HH:MM, or an instant as 2026-12-24T02:00:00Z",
                        raw.start
                    ))
                })?;
                let ms = at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                Start::Once(ms)
            }
        };
        let mut days = [raw.days.is_none(); 7];
        for day in raw.days.iter().flatten() {
            let index = DAYS
                .iter()
                .position(|d| day.to_ascii_lowercase().starts_with(d))
                .ok_or_else(|| fail(format!("unknown day {day:?}: write mon, tue... sun")))?;
            days[index] = true;
        }
        if raw.duration.is_zero() {
            return Err(fail("its duration must be above zero".into()));
        }
        if let Start::Daily(_) = start {
            if !days.contains(&true) {
                return Err(fail("days names no day".into()));
            }
            // Every gap between two starts shorter than the duration: it never ends.
            let chosen: Vec<i64> = (0..7).filter(|d| days[*d as usize]).collect();
            let longest_gap = (0..chosen.len())
                .map(|i| chosen.get(i + 1).copied().unwrap_or(chosen[0] + 7) - chosen[i])
                .max()
                .unwrap_or(7);
            if raw.duration.as_millis() as i64 >= longest_gap * DAY_MS {
                return Err(fail(format!(
                    "a window of {} on those days never ends: shorten it or choose fewer days",
                    humantime::format_duration(raw.duration)
                )));
            }
        }
        Ok(Self {
            name,
            services: raw.services,
            start,
            duration: raw.duration,
            zone,
            days,
        })
    }
}

impl Scheduled {
    /// The occurrence that holds `now_ms`: (start, end), Unix milliseconds.
    fn current(&self, now_ms: i64) -> Option<(i64, i64)> {
        let length = self.duration.as_millis() as i64;
        self.occurrences(now_ms - length, now_ms + 1)
            .into_iter()
            .find(|&(start, end)| start <= now_ms && now_ms < end)
    }

    /// Every occurrence that overlaps `[from_ms, to_ms)`, oldest first.
    fn occurrences(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
        let length = self.duration.as_millis() as i64;
        let overlaps = |start: i64| start < to_ms && from_ms < start + length;
        match self.start {
            Start::Once(at) => overlaps(at)
                .then_some((at, at + length))
                .into_iter()
                .collect(),
            Start::Daily(minutes) => {
                // Each local day whose start may overlap: from as far back as the
                // window is long, to the day after `to_ms` (time zones move days).
                let first = (from_ms - length).div_euclid(DAY_MS) - 1;
                let last = to_ms.div_euclid(DAY_MS) + 1;
                let mut starts: Vec<i64> = (first..=last)
                    .filter_map(|day| self.start_on(day * DAY_MS + DAY_MS / 2, minutes))
                    .filter(|&start| overlaps(start))
                    .collect();
                starts.dedup();
                starts.into_iter().map(|s| (s, s + length)).collect()
            }
        }
    }

    /// The start on the local day that holds `at_ms`, if that day is one of the
    /// window's days.
    fn start_on(&self, at_ms: i64, minutes: u32) -> Option<i64> {
        let local = DateTime::from_timespec(at_ms.div_euclid(1000), 0, self.zone.as_ref()).ok()?;
        if !self.days[usize::from(local.week_day())] {
            return None;
        }
        let start = DateTime::find(
            local.year(),
            local.month(),
            local.month_day(),
            (minutes / 60) as u8,
            (minutes % 60) as u8,
            0,
            0,
            self.zone.as_ref(),
        )
        .ok()?
        .earliest()?;
        Some(start.unix_time() * 1000)
    }
}

/// A window open now, for the admin API and the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenWindow {
    /// The ad hoc window's id, or the configured window's name.
    pub id: String,
    /// `config` or `admin`.
    pub source: &'static str,
    /// Its services: names and patterns.
    pub services: Vec<String>,
    /// Since, Unix milliseconds.
    pub start_ms: i64,
    /// Until, Unix milliseconds.
    pub end_ms: i64,
    /// Why, when opened through the admin API.
    pub reason: String,
}

/// Why a window could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The request does not make sense.
    #[error("{0}")]
    Invalid(String),
    /// Too many windows are open.
    #[error("{0} maintenance windows are open already; end one first")]
    Full(usize),
    /// The store could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An ad hoc window, its services' patterns compiled.
struct Adhoc {
    window: AdHocWindow,
    patterns: Vec<glob::Pattern>,
}

/// Every window, configured and ad hoc; cheap to clone.
#[derive(Clone)]
pub struct Maintenance {
    scheduled: Arc<Vec<Scheduled>>,
    adhoc: Arc<RwLock<Vec<Adhoc>>>,
    store: Arc<dyn AlertStore>,
    changed: Arc<Notify>,
    replica: String,
    /// At most this many ad hoc windows open at once.
    pub max_open: usize,
    /// The longest ad hoc window.
    pub max_duration: Duration,
}

impl std::fmt::Debug for Maintenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maintenance")
            .field("scheduled", &self.scheduled.len())
            .finish_non_exhaustive()
    }
}

impl Maintenance {
    /// The windows of the config, and those `store` keeps.
    pub fn new(scheduled: Vec<Scheduled>, store: Arc<dyn AlertStore>, replica: String) -> Self {
        Self {
            scheduled: Arc::new(scheduled),
            adhoc: Arc::default(),
            store,
            changed: Arc::default(),
            replica,
            max_open: 100,
            max_duration: Duration::from_secs(7 * 24 * 3600),
        }
    }

    /// Woken when a window is opened or ended here.
    pub(super) fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// When the last window covering `service` at `now_ms` ends, if one does.
    pub fn until(&self, service: &str, now_ms: i64) -> Option<i64> {
        self.open(now_ms)
            .into_iter()
            .filter(|(_, patterns)| patterns.iter().any(|p| p.matches(service)))
            .map(|(w, _)| w.end_ms)
            .max()
    }

    /// The windows open at `now_ms`.
    pub fn list(&self, now_ms: i64) -> Vec<OpenWindow> {
        self.open(now_ms).into_iter().map(|(w, _)| w).collect()
    }

    /// The windows open at `now_ms`, with the patterns of their services.
    fn open(&self, now_ms: i64) -> Vec<(OpenWindow, Vec<glob::Pattern>)> {
        let mut open = Vec::new();
        for s in self.scheduled.iter() {
            if let Some((start_ms, end_ms)) = s.current(now_ms) {
                let window = OpenWindow {
                    id: s.name.clone(),
                    source: "config",
                    services: s.services.iter().map(ServiceGlob::to_string).collect(),
                    start_ms,
                    end_ms,
                    reason: String::new(),
                };
                let patterns = s.services.iter().map(|g| g.pattern().clone()).collect();
                open.push((window, patterns));
            }
        }
        let adhoc = self.adhoc.read().unwrap_or_else(|e| e.into_inner());
        for Adhoc {
            window: w,
            patterns,
        } in adhoc.iter()
        {
            if w.start_ms <= now_ms && now_ms < w.end_ms {
                let window = OpenWindow {
                    id: w.id.clone(),
                    source: "admin",
                    services: w.services.clone(),
                    start_ms: w.start_ms,
                    end_ms: w.end_ms,
                    reason: w.reason.clone(),
                };
                open.push((window, patterns.clone()));
            }
        }
        open
    }

    /// Which of `service`'s moments since `since_ms` were inside a window, for
    /// History's marks: the configured windows, and the ad hoc ones the store
    /// still has (ended ones included).
    pub async fn marker(
        &self,
        service: &str,
        since_ms: i64,
    ) -> Result<impl Fn(i64) -> bool + use<>, StoreError> {
        let held = self.intervals(service, since_ms, now_ms() + 1).await?;
        Ok(move |at_ms: i64| {
            held.iter()
                .any(|&(start, end)| start <= at_ms && at_ms < end)
        })
    }

    /// The stretches of `[from_ms, to_ms)` that windows covering `service` held,
    /// sorted and merged: uptime reports them apart. The configured windows, and
    /// the ad hoc ones the store still has.
    pub async fn intervals(
        &self,
        service: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut all: Vec<(i64, i64)> = self
            .store
            .windows(from_ms)
            .await?
            .into_iter()
            .filter(|w| {
                w.services
                    .iter()
                    .any(|s| glob::Pattern::new(s).is_ok_and(|p| p.matches(service)))
            })
            .map(|w| (w.start_ms, w.end_ms))
            .collect();
        for s in self.scheduled.iter() {
            if s.services.iter().any(|g| g.matches(service)) {
                all.extend(s.occurrences(from_ms, to_ms));
            }
        }
        all.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(all.len());
        for (start, end) in all {
            let (start, end) = (start.max(from_ms), end.min(to_ms));
            if start >= end {
                continue;
            }
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Ok(merged)
    }

    /// Reads the ad hoc windows from the store again (another replica may have
    /// opened or ended one).
    pub async fn refresh(&self, now_ms: i64) -> Result<(), StoreError> {
        let windows = self.store.windows(now_ms).await?;
        let compiled = windows
            .into_iter()
            .map(|w| {
                let patterns = w
                    .services
                    .iter()
                    .filter_map(|s| glob::Pattern::new(s).ok())
                    .collect();
                Adhoc {
                    window: w,
                    patterns,
                }
            })
            .collect();
        *self.adhoc.write().unwrap_or_else(|e| e.into_inner()) = compiled;
        Ok(())
    }

    /// Opens an ad hoc window over `services` for `length` from `now_ms`.
    pub async fn add(
        &self,
        services: Vec<String>,
        length: Duration,
        reason: String,
        now_ms: i64,
    ) -> Result<AdHocWindow, OpenError> {
        if services.is_empty() {
            return Err(OpenError::Invalid(
                "name the services (names or glob patterns)".into(),
            ));
        }
        for s in &services {
            glob::Pattern::new(s)
                .map_err(|e| OpenError::Invalid(format!("bad glob {s:?}: {e}")))?;
        }
        if length.is_zero() || length > self.max_duration {
            return Err(OpenError::Invalid(format!(
                "the duration must be above zero and at most {}",
                humantime::format_duration(self.max_duration)
            )));
        }
        let window = AdHocWindow {
            id: super::new_id(),
            services,
            start_ms: now_ms,
            end_ms: now_ms + length.as_millis() as i64,
            reason,
            replica: self.replica.clone(),
            created_ms: now_ms,
        };
        if !self.store.add_window(&window, self.max_open).await? {
            return Err(OpenError::Full(self.max_open));
        }
        self.refresh(now_ms).await?;
        self.changed.notify_one();
        Ok(window)
    }

    /// Ends ad hoc window `id` now; the window, if there is one.
    pub async fn end(&self, id: &str, now_ms: i64) -> Result<Option<AdHocWindow>, StoreError> {
        let ended = self.store.end_window(id, now_ms).await?;
        self.refresh(now_ms).await?;
        self.changed.notify_one();
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[maintenance]` table of `rest` after a name and services.
    fn parse(rest: &str) -> Result<Scheduled, String> {
        #[derive(Deserialize)]
        struct File {
            maintenance: Scheduled,
        }
        let text = format!("[maintenance]\nname = \"n\"\nservices = [\"db\"]\n{rest}");
        toml::from_str::<File>(&text)
            .map(|f| f.maintenance)
            .map_err(|e| e.to_string())
    }

    fn ms(rfc3339: &str) -> i64 {
        humantime::parse_rfc3339(rfc3339)
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    }

    #[test]
    fn daily_windows_follow_their_zone_and_days() {
        // 02:00-03:00 in Paris (UTC+1 in December) on Saturdays; 2026-12-05 is one.
        let w = parse(
            "start = \"02:00\"\nduration = \"1h\"\ntime_zone = \"Europe/Paris\"\ndays = [\"sat\"]\n",
        )
        .unwrap();
        let start = ms("2026-12-05T01:00:00Z");
        assert_eq!(
            w.current(ms("2026-12-05T01:30:00Z")),
            Some((start, start + 3_600_000))
        );
        assert_eq!(w.current(ms("2026-12-05T00:59:59Z")), None);
        assert_eq!(w.current(ms("2026-12-05T02:00:00Z")), None);
        assert_eq!(w.current(ms("2026-12-06T01:30:00Z")), None, "a Sunday");
        // Over midnight: Friday 23:30 UTC for an hour holds Saturday 00:10.
        let w = parse("start = \"23:30\"\nduration = \"1h\"\ndays = [\"fri\"]\n").unwrap();
        assert!(w.current(ms("2026-12-05T00:10:00Z")).is_some());
        assert!(w.current(ms("2026-12-06T00:10:00Z")).is_none());
        // Uptime's view: every occurrence over two weeks, the one cut at each end too.
        let fridays = w.occurrences(ms("2026-12-05T00:00:00Z"), ms("2026-12-19T00:10:00Z"));
        let starts = [
            "2026-12-04T23:30:00Z",
            "2026-12-11T23:30:00Z",
            "2026-12-18T23:30:00Z",
        ];
        assert_eq!(fridays, starts.map(|s| (ms(s), ms(s) + 3_600_000)).to_vec());
    }

    #[test]
    fn windows_that_never_end_or_make_no_sense_are_refused() {
        let refused = |rest: &str| parse(rest).unwrap_err();
        assert!(refused("start = \"00:00\"\nduration = \"24h\"\n").contains("never ends"));
        assert!(refused("start = \"00:00\"\nduration = \"0s\"\n").contains("above zero"));
        assert!(refused("start = \"25:00\"\nduration = \"1h\"\n").contains("HH:MM"));
        let zone = refused("start = \"01:00\"\nduration = \"1h\"\ntime_zone = \"Mars/Olympus\"\n");
        assert!(zone.contains("unknown time_zone"), "{zone}");
        // Mondays and Thursdays, 3 days long: Sundays are free, so it ends.
        assert!(parse("start = \"00:00\"\nduration = \"3d\"\ndays = [\"mon\", \"thu\"]\n").is_ok());
    }
}
