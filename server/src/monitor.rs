//! Upstream monitoring: one task per `[[upstream]]`, each turning what it sees
//! into a service status in healthweb's own registry.
//!
//! - Watch first (a change arrives at once and is taken at once); a Watch that
//!   ends with UNIMPLEMENTED switches the upstream to polling Check for good.
//! - Thresholds count consecutive probe results (polls, errors, failed
//!   reconnects), as Kubernetes and Envoy count them.
//! - Each upstream has its own task, deadline and jittered interval, so a
//!   hanging one never delays another.
//! - [`Monitor::apply`] adds, changes and removes upstreams on reload without
//!   touching the others; a removed one leaves the registry.
//!
//! What each task saw last is kept in [`Reports`], served as JSON at `/upstreams`.

use std::{
    collections::{BTreeMap, HashMap},
    pin::Pin,
    sync::{Arc, RwLock},
    time::{Duration, Instant, SystemTime},
};

use healthweb_client::{
    Error, Options, ServingStatus,
    core::WatchStream,
    native::{self, ConnectError, NativeClient, Protocol, Target, TlsOptions},
};
use healthweb_proto::pb::{HealthCheckResponse, health_client::HealthClient};
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::{
    registry::HealthRegistry,
    upstream::{UpstreamConfig, UpstreamProtocol},
};

/// What the monitor saw last of one upstream.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The upstream's address.
    pub target: String,
    /// How it is asked.
    pub protocol: UpstreamProtocol,
    /// `watch` while a Watch stream is open, `poll` otherwise.
    pub mode: &'static str,
    /// The status healthweb shows for it.
    pub status: &'static str,
    /// What the upstream itself answered last (`SERVING`, `HTTP 503`...), if anything.
    pub answer: Option<String>,
    /// The last error, if the last probe failed.
    pub error: Option<String>,
    /// How long the last probe took, in milliseconds.
    pub latency_ms: Option<f64>,
    /// When the last probe ended (RFC 3339).
    pub probed_at: Option<String>,
    /// When `status` last changed (RFC 3339).
    pub changed_at: Option<String>,
    /// Consecutive successful probes.
    pub successes: u32,
    /// Consecutive failed probes.
    pub failures: u32,
}

/// The latest [`Report`] of every upstream, shared with the routes.
pub type Reports = Arc<RwLock<BTreeMap<String, Report>>>;

/// The running upstream tasks.
#[derive(Debug)]
pub struct Monitor {
    registry: HealthRegistry,
    reports: Reports,
    running: HashMap<String, (UpstreamConfig, JoinHandle<()>)>,
}

impl Monitor {
    /// A monitor with no upstreams yet.
    pub fn new(registry: HealthRegistry) -> Self {
        Self {
            registry,
            reports: Reports::default(),
            running: HashMap::new(),
        }
    }

    /// The reports, for `/upstreams`.
    pub fn reports(&self) -> Reports {
        self.reports.clone()
    }

    /// How many upstream tasks run.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether no upstream is monitored.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Brings the running tasks in line with `upstreams`: new ones start, changed
    /// ones restart (their status stays until the new task knows better), removed
    /// ones stop and leave the registry. Unchanged ones are not touched.
    pub fn apply(&mut self, upstreams: &[UpstreamConfig]) {
        let wanted: HashMap<&str, &UpstreamConfig> =
            upstreams.iter().map(|u| (u.name.as_str(), u)).collect();
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|name| !wanted.contains_key(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some((_, task)) = self.running.remove(&name) {
                task.abort();
            }
            let _ = self.registry.remove(&name);
            self.write_reports().remove(&name);
        }
        for (name, config) in wanted {
            if self.running.get(name).is_some_and(|(old, _)| old == config) {
                continue;
            }
            if let Some((_, task)) = self.running.remove(name) {
                task.abort();
            }
            let task = tokio::spawn(
                Upstream::new(config.clone(), self.registry.clone(), self.reports.clone()).run(),
            );
            self.running.insert(name.to_owned(), (config.clone(), task));
        }
    }

    fn write_reports(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Report>> {
        self.reports.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for (_, task) in self.running.values() {
            task.abort();
        }
    }
}

/// The consecutive-result counters behind an upstream's status.
#[derive(Debug, Clone)]
pub struct Thresholds {
    healthy: u32,
    unhealthy: u32,
    successes: u32,
    failures: u32,
}

impl Thresholds {
    /// Counters for `healthy` successes and `unhealthy` failures in a row.
    pub fn new(healthy: u32, unhealthy: u32) -> Self {
        Self {
            healthy,
            unhealthy,
            successes: 0,
            failures: 0,
        }
    }

    /// Counts one probe result; returns the status it settles, if it settles one.
    pub fn record(&mut self, success: bool) -> Option<ServingStatus> {
        if success {
            self.successes += 1;
            self.failures = 0;
            (self.successes >= self.healthy).then_some(ServingStatus::Serving)
        } else {
            self.failures += 1;
            self.successes = 0;
            (self.failures >= self.unhealthy).then_some(ServingStatus::NotServing)
        }
    }

    /// A status a Watch delivered: taken at once, counters start again from it.
    pub fn take(&mut self, status: ServingStatus) {
        let serving = status == ServingStatus::Serving;
        self.successes = u32::from(serving);
        self.failures = u32::from(!serving);
    }
}

/// One upstream's task state.
struct Upstream {
    config: UpstreamConfig,
    registry: HealthRegistry,
    reports: Reports,
    thresholds: Thresholds,
    status: ServingStatus,
}

impl Upstream {
    fn new(config: UpstreamConfig, registry: HealthRegistry, reports: Reports) -> Self {
        // A restarted upstream keeps what it showed; a new one is UNKNOWN until it knows.
        let status = registry.check(&config.name).unwrap_or_else(|| {
            let _ = registry.set(&config.name, ServingStatus::Unknown);
            ServingStatus::Unknown
        });
        let thresholds = Thresholds::new(config.healthy_threshold, config.unhealthy_threshold);
        Self {
            config,
            registry,
            reports,
            thresholds,
            status,
        }
    }

    fn target(&self) -> Target {
        let tls = &self.config.tls;
        Target {
            url: self.config.target.clone(),
            protocol: match self.config.protocol {
                UpstreamProtocol::GrpcWeb => Protocol::GrpcWeb,
                UpstreamProtocol::GrpcWebText => Protocol::GrpcWebText,
                UpstreamProtocol::Grpc | UpstreamProtocol::Http => Protocol::Grpc,
            },
            tls: TlsOptions {
                ca: tls.ca.clone(),
                cert: tls.cert.clone(),
                key: tls.key.clone(),
                server_name: tls.server_name.clone(),
                no_verify: tls.insecure_skip_verify,
            },
            connect_timeout: self.config.timeout,
            user_agent: Some(concat!("healthweb-monitor/", env!("CARGO_PKG_VERSION")).into()),
        }
    }

    async fn run(mut self) {
        let target = self.target();
        if self.config.protocol == UpstreamProtocol::Http {
            loop {
                let start = Instant::now();
                let path = if self.config.service.is_empty() {
                    "/"
                } else {
                    &self.config.service
                };
                let result = native::http_status(&target, path, self.config.timeout).await;
                let (answer, error) = match result {
                    Ok(code) if (200..300).contains(&code) => (Some(format!("HTTP {code}")), None),
                    Ok(code) => (
                        Some(format!("HTTP {code}")),
                        Some(format!("HTTP {code} from {path}")),
                    ),
                    Err(error) => (None, Some(error)),
                };
                let success = error.is_none();
                self.probed("poll", answer, error, start.elapsed(), Some(success), None);
                tokio::time::sleep(self.jittered()).await;
            }
        }
        let options = Options {
            timeout: Some(self.config.timeout),
            headers: self.config.headers.clone().into_iter().collect(),
        };
        let mut watch = self.config.watch;
        loop {
            let start = Instant::now();
            let client = match connect(&target, &options).await {
                Ok(client) => client,
                Err(error) => {
                    self.probed(
                        "poll",
                        None,
                        Some(error.to_string()),
                        start.elapsed(),
                        Some(false),
                        None,
                    );
                    tokio::time::sleep(self.jittered()).await;
                    continue;
                }
            };
            loop {
                let start = Instant::now();
                if watch {
                    match self.watch(&client).await {
                        Err(error) if error.code() == tonic::Code::Unimplemented => {
                            // The spec: never retry a Watch the server does not have.
                            watch = false;
                            continue;
                        }
                        Err(error) => {
                            self.probed(
                                "watch",
                                None,
                                Some(error.to_string()),
                                start.elapsed(),
                                Some(false),
                                None,
                            );
                        }
                        Ok(()) => {
                            let ended = "the Watch stream ended".to_owned();
                            self.probed(
                                "watch",
                                None,
                                Some(ended),
                                start.elapsed(),
                                Some(false),
                                None,
                            );
                        }
                    }
                    tokio::time::sleep(self.jittered()).await;
                    // The channel reconnects by itself; the next Watch is the reconnect.
                } else {
                    let result = check(&client, &self.config.service).await;
                    let (answer, error, success) = match result {
                        Ok(status) => (
                            Some(status.as_str_name().to_owned()),
                            None,
                            status == ServingStatus::Serving,
                        ),
                        Err(error) => (None, Some(error.to_string()), false),
                    };
                    self.probed("poll", answer, error, start.elapsed(), Some(success), None);
                    tokio::time::sleep(self.jittered()).await;
                }
            }
        }
    }

    /// One Watch call: the first message must come within the timeout; each
    /// message after it is taken at once. Returns when the stream ends.
    async fn watch(&mut self, client: &NativeClient) -> Result<(), Error> {
        let start = Instant::now();
        let deadline = self.config.timeout;
        let opened = tokio::time::timeout(deadline, async {
            let mut stream = open_watch(client, &self.config.service).await?;
            let first = message_of(&mut stream).await?;
            Ok::<_, Error>((stream, first))
        })
        .await
        .map_err(|_| Error::Deadline(deadline))??;
        let (mut stream, mut message) = opened;
        let latency = start.elapsed();
        while let Some(reply) = message {
            let answer = reply.status();
            let shown = match answer {
                ServingStatus::Serving => ServingStatus::Serving,
                ServingStatus::Unknown => ServingStatus::Unknown,
                // Not serving, or not knowing the service: either way not usable.
                _ => ServingStatus::NotServing,
            };
            self.probed(
                "watch",
                Some(answer.as_str_name().to_owned()),
                None,
                latency,
                None,
                Some(shown),
            );
            message = message_of(&mut stream).await?;
        }
        Ok(())
    }

    /// Records one probe: `counted` feeds the thresholds, `taken` sets a status at once.
    fn probed(
        &mut self,
        mode: &'static str,
        answer: Option<String>,
        error: Option<String>,
        latency: Duration,
        counted: Option<bool>,
        taken: Option<ServingStatus>,
    ) {
        let settled = match (counted, taken) {
            (_, Some(status)) => {
                self.thresholds.take(status);
                Some(status)
            }
            (Some(success), None) => self.thresholds.record(success),
            (None, None) => None,
        };
        let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let mut reports = self.reports.write().unwrap_or_else(|e| e.into_inner());
        let report = reports
            .entry(self.config.name.clone())
            .or_insert_with(|| Report {
                target: self.config.target.clone(),
                protocol: self.config.protocol,
                mode,
                status: self.status.as_str_name(),
                answer: None,
                error: None,
                latency_ms: None,
                probed_at: None,
                changed_at: None,
                successes: 0,
                failures: 0,
            });
        if let Some(status) = settled
            && status != self.status
        {
            self.status = status;
            report.changed_at = Some(now.clone());
            // Ignored while healthweb itself is shut down: it stays NOT_SERVING.
            let _ = self.registry.set(&self.config.name, status);
        }
        report.mode = mode;
        report.status = self.status.as_str_name();
        report.answer = answer;
        report.error = error;
        report.latency_ms = Some((latency.as_secs_f64() * 1e6).round() / 1e3);
        report.probed_at = Some(now);
        report.successes = self.thresholds.successes;
        report.failures = self.thresholds.failures;
    }

    /// The interval, ±10%, so that many upstreams do not probe in lockstep.
    fn jittered(&self) -> Duration {
        self.config.interval.mul_f64(0.9 + 0.2 * fastrand::f64())
    }
}

// The client's futures are generic over their channel; boxing them here, with
// the channel type fixed, lets the compiler prove them Send for `tokio::spawn`.
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type Watch = <HealthClient<native::Channel> as healthweb_client::Transport>::Watch;

fn connect<'a>(
    target: &'a Target,
    options: &'a Options,
) -> Boxed<'a, Result<NativeClient, ConnectError>> {
    Box::pin(native::connect(target, options.clone()))
}

fn check<'a>(
    client: &'a NativeClient,
    service: &'a str,
) -> Boxed<'a, Result<ServingStatus, Error>> {
    Box::pin(client.check(service))
}

fn open_watch<'a>(client: &'a NativeClient, service: &'a str) -> Boxed<'a, Result<Watch, Error>> {
    Box::pin(client.open_watch(service))
}

fn message_of(stream: &mut Watch) -> Boxed<'_, Result<Option<HealthCheckResponse>, Error>> {
    Box::pin(WatchStream::message(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_count_consecutive_results() {
        let mut t = Thresholds::new(2, 3);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None, "a success resets the failures");
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(ServingStatus::NotServing));
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(true), Some(ServingStatus::Serving));
        t.take(ServingStatus::NotServing);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(ServingStatus::NotServing));
    }
}
