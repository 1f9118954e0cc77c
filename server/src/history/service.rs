//! `healthweb.v1.History`: Transitions, Uptime and Latency, over the store.
//!
//! A query waits for the store at most `--history-timeout`, then answers
//! UNAVAILABLE: a store that is away never holds a call for long.

use std::time::Duration;

use healthweb_proto::{
    history::{
        Bucket, LatencyRequest, LatencyResponse, Minute, Transition, TransitionsRequest,
        TransitionsResponse, UptimeRequest, UptimeResponse, Window, history_server,
    },
    pb::health_check_response::ServingStatus,
};
use tonic::{Request, Response, Status};

use super::{History, Row, StoreError, now_ms, uptime};
use crate::{alert::maintenance::Maintenance, registry::HealthRegistry};

/// Most transitions one call returns.
pub const MAX_LIMIT: u32 = 1000;
/// Transitions returned when the call names no limit.
pub const DEFAULT_LIMIT: u32 = 100;
/// Most buckets one bar has.
pub const MAX_BUCKETS: u32 = 1440;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The History service over a store and the registry.
#[derive(Debug, Clone)]
pub struct HistoryService {
    history: History,
    registry: HealthRegistry,
    max_service_name: usize,
    timeout: Duration,
    maintenance: Option<Maintenance>,
}

impl HistoryService {
    /// History of `registry`'s services, from `history`, which gets `timeout`
    /// to answer.
    pub fn new(
        history: History,
        registry: HealthRegistry,
        max_service_name: usize,
        timeout: Duration,
    ) -> Self {
        Self {
            history,
            registry,
            max_service_name,
            timeout,
            maintenance: None,
        }
    }

    /// Marks the transitions inside `maintenance`'s windows.
    pub fn with_maintenance(mut self, maintenance: Option<Maintenance>) -> Self {
        self.maintenance = maintenance;
        self
    }

    /// Checks `service`'s name, and that it exists: registered now, or with history.
    async fn known(&self, service: &str) -> Result<(), Status> {
        if service.len() > self.max_service_name {
            return Err(Status::invalid_argument(format!(
                "service name is {} bytes long; the limit is {} (--max-service-name)",
                service.len(),
                self.max_service_name
            )));
        }
        if self.registry.check(service).is_some()
            || self
                .answer(self.history.store().first_ms(service))
                .await?
                .is_some()
        {
            return Ok(());
        }
        Err(Status::not_found(format!(
            "unknown service {service:?}: not registered, and no history"
        )))
    }

    /// Waits for `query` at most `--history-timeout`: a store that is away
    /// answers UNAVAILABLE, never holds the call.
    async fn answer<T>(
        &self,
        query: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, Status> {
        tokio::time::timeout(self.timeout, query)
            .await
            .map_err(|_| {
                Status::unavailable(format!(
                    "the history store ({}) did not answer within {}",
                    self.history.store().describe(),
                    humantime::format_duration(self.timeout)
                ))
            })?
            .map_err(|e| Status::unavailable(e.to_string()))
    }
}

fn transition(row: Row) -> Transition {
    Transition {
        at_unix_ms: row.at_ms,
        from: row.from,
        to: row.to,
        cause: row.cause,
        detail: row.detail,
        count: row.count,
        worst: row.worst,
        until_unix_ms: row.until_ms,
        replica: row.replica,
        in_maintenance: false,
    }
}

fn window(span: uptime::Span) -> Window {
    Window {
        serving: span.serving(),
        recorded_ms: span.recorded_ms,
        maintenance_ms: span.maintenance_ms,
    }
}

#[tonic::async_trait]
impl history_server::History for HistoryService {
    async fn transitions(
        &self,
        request: Request<TransitionsRequest>,
    ) -> Result<Response<TransitionsResponse>, Status> {
        let TransitionsRequest {
            service,
            since_unix_ms: since,
            until_unix_ms: until,
            limit,
        } = request.into_inner();
        if since < 0 || until < 0 {
            return Err(Status::invalid_argument(
                "since_unix_ms and until_unix_ms are Unix milliseconds, never negative",
            ));
        }
        let until = if until == 0 { i64::MAX } else { until };
        if since > until {
            return Err(Status::invalid_argument(format!(
                "since_unix_ms ({since}) is after until_unix_ms ({until})"
            )));
        }
        if limit > MAX_LIMIT {
            return Err(Status::invalid_argument(format!(
                "limit {limit} is over {MAX_LIMIT}; page with until_unix_ms instead"
            )));
        }
        let limit = if limit == 0 { DEFAULT_LIMIT } else { limit } as usize;
        self.known(&service).await?;
        let store = self.history.store();
        let (rows, truncated) = self
            .answer(store.transitions(&service, since..until, limit))
            .await?;
        let mut transitions: Vec<Transition> = rows.into_iter().map(transition).collect();
        if let (Some(maintenance), Some(oldest)) = (&self.maintenance, transitions.last()) {
            let inside = self
                .answer(maintenance.marker(&service, oldest.at_unix_ms))
                .await?;
            for t in &mut transitions {
                t.in_maintenance = inside(t.at_unix_ms);
            }
        }
        Ok(Response::new(TransitionsResponse {
            transitions,
            truncated,
        }))
    }

    async fn uptime(
        &self,
        request: Request<UptimeRequest>,
    ) -> Result<Response<UptimeResponse>, Status> {
        let UptimeRequest {
            service,
            buckets,
            span_seconds,
        } = request.into_inner();
        if buckets > MAX_BUCKETS {
            return Err(Status::invalid_argument(format!(
                "{buckets} buckets is over {MAX_BUCKETS}"
            )));
        }
        let span_ms = match span_seconds {
            0 => DAY_MS,
            s if Duration::from_secs(u64::from(s)) > Duration::from_secs(30 * 86_400) => {
                return Err(Status::invalid_argument(
                    "span_seconds is over 30 days (2592000)",
                ));
            }
            s => i64::from(s) * 1000,
        };
        let buckets = if buckets == 0 { 48 } else { buckets } as usize;
        let current = self
            .registry
            .check(&service)
            .unwrap_or(ServingStatus::ServiceUnknown);
        let now = now_ms();
        self.known(&service).await?;
        let store = self.history.store();
        let rows = self
            .answer(store.timeline(&service, now - 30 * DAY_MS..now + 1))
            .await?;
        let since = self.answer(store.first_ms(&service)).await?.unwrap_or(now);
        let held = match &self.maintenance {
            Some(m) => {
                self.answer(m.intervals(&service, now - 30 * DAY_MS, now))
                    .await?
            }
            None => Vec::new(),
        };
        // Each window's rows: the one in effect at its start, then the rest.
        let from = |start: i64| {
            let first = rows.partition_point(|r| r.at_ms <= start).saturating_sub(1);
            &rows[first..]
        };
        let (day, week, month, bars) = (
            uptime::span(from(now - DAY_MS), now - DAY_MS, now, &held),
            uptime::span(from(now - 7 * DAY_MS), now - 7 * DAY_MS, now, &held),
            uptime::span(&rows, now - 30 * DAY_MS, now, &held),
            uptime::buckets(&rows, now - span_ms, now, buckets, &held),
        );
        Ok(Response::new(UptimeResponse {
            day: Some(window(day)),
            week: Some(window(week)),
            month: Some(window(month)),
            buckets: bars
                .into_iter()
                .map(|(start, end, span)| Bucket {
                    start_unix_ms: start,
                    end_unix_ms: end,
                    worst: span.worst.unwrap_or(ServingStatus::ServiceUnknown as i32),
                    serving: span.serving(),
                    changes: span.changes,
                })
                .collect(),
            current: current as i32,
            recorded_since_unix_ms: since,
        }))
    }

    async fn latency(
        &self,
        request: Request<LatencyRequest>,
    ) -> Result<Response<LatencyResponse>, Status> {
        let LatencyRequest {
            service,
            since_unix_ms,
        } = request.into_inner();
        if since_unix_ms < 0 {
            return Err(Status::invalid_argument(
                "since_unix_ms is Unix milliseconds, never negative",
            ));
        }
        let since = if since_unix_ms == 0 {
            now_ms() - 3600 * 1000
        } else {
            since_unix_ms
        };
        self.known(&service).await?;
        let minutes = self
            .answer(self.history.store().minutes(&service, since))
            .await?;
        Ok(Response::new(LatencyResponse {
            minutes: minutes
                .into_iter()
                .map(|m| Minute {
                    start_unix_ms: m.minute_ms,
                    probes: m.probes,
                    p50_ms: m.p50_ms,
                    p99_ms: m.p99_ms,
                    max_ms: m.max_ms,
                })
                .collect(),
        }))
    }
}
