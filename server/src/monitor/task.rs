//! One upstream's task: follow it with Watch, poll its Check, or GET a URL, and
//! turn each result into a [`Report`] and, through the thresholds, a status.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use healthweb_client::{
    Error, Options, ServingStatus,
    backoff::jitter,
    native::{NativeClient, Protocol, Target},
};

use super::{Mode, ProbeObservers, Report, Reports, Thresholds, http::HttpProbe, pool::Pool};
use crate::{
    registry::{Cause, HealthRegistry, Reason},
    upstream::{UpstreamConfig, Via},
};

/// The monitor's User-Agent; with replicas, the one probing is named after it.
const AGENT: &str = concat!("healthweb-monitor/", env!("CARGO_PKG_VERSION"));

/// How far each interval is spread, so that many upstreams do not probe in lockstep.
const JITTER: f64 = 0.1;

/// What one probe found.
struct Outcome {
    mode: Mode,
    /// What the upstream answered, if it answered.
    answer: Option<String>,
    /// Why the probe failed, if it did.
    error: Option<String>,
    latency: Duration,
    /// Whether `latency` was measured by this probe (a Watch's later messages
    /// repeat the first one's).
    measured: bool,
    verdict: Verdict,
}

/// How a probe moves the upstream's status.
enum Verdict {
    /// One more success or failure for the thresholds to count.
    Counted(bool),
    /// A status the upstream's Watch delivered: taken at once.
    Taken(ServingStatus),
}

impl Outcome {
    fn failed(mode: Mode, error: String, latency: Duration) -> Self {
        Self {
            mode,
            answer: None,
            error: Some(error),
            latency,
            measured: true,
            verdict: Verdict::Counted(false),
        }
    }
}

/// One upstream's task state.
pub(super) struct Upstream {
    config: Arc<UpstreamConfig>,
    registry: HealthRegistry,
    reports: Reports,
    observers: ProbeObservers,
    thresholds: Thresholds,
    status: ServingStatus,
    /// The replica that probes, when replicas share the work.
    replica: Option<String>,
    pool: Pool,
}

impl Upstream {
    pub(super) fn new(
        config: Arc<UpstreamConfig>,
        registry: HealthRegistry,
        reports: Reports,
        observers: ProbeObservers,
        replica: Option<String>,
        pool: Pool,
    ) -> Self {
        // A restarted (or taken over) upstream keeps what it showed; a new one is
        // UNKNOWN until it knows.
        let status = registry
            .check(&config.name)
            .unwrap_or(ServingStatus::Unknown);
        let thresholds = Thresholds::new(config.healthy_threshold, config.unhealthy_threshold);
        Self {
            config,
            registry,
            reports,
            observers,
            thresholds,
            status,
            replica,
            pool,
        }
    }

    fn target(&self) -> Target {
        Target {
            url: self.config.target.clone(),
            protocol: match self.config.protocol {
                Via::Health(protocol) => protocol,
                // A plain GET goes over the HTTP/1.1 wire.
                Via::Http => Protocol::GrpcWeb,
            },
            tls: self.config.tls.clone(),
            connect_timeout: self.config.timeout,
            user_agent: Some(match &self.replica {
                None => AGENT.into(),
                Some(replica) => format!("{AGENT} (replica {replica})"),
            }),
            gzip: false,
        }
    }

    /// The task: one of these runs for every upstream, for as long as it is
    /// monitored, so what it holds while it waits is what 10,000 upstreams cost.
    /// The futures of the short steps (connecting, opening a Watch, a Check, a
    /// GET) are several KiB and are boxed: inline, every task would be as large as
    /// the largest of them for its whole life (6.3 KiB a task under heaptrack with
    /// 2,000 upstreams; the monitor of 10,000 went from 135 to 77 MiB, BENCHMARKS.md
    /// "A fleet").
    pub(super) async fn run(mut self) {
        let target = self.target();
        match self.config.protocol {
            Via::Http => self.get(&target).await,
            Via::Health(_) => self.health(&target).await,
        }
    }

    /// `protocol = "http"`: a GET every interval.
    async fn get(&mut self, target: &Target) {
        let path = match self.config.service.as_str() {
            "" => "/".to_owned(),
            path => path.to_owned(),
        };
        let probe = HttpProbe::new(target, &path);
        loop {
            let start = Instant::now();
            let outcome = match probe.as_ref() {
                Err(error) => Outcome::failed(Mode::Poll, error.clone(), start.elapsed()),
                Ok(probe) => {
                    let (answer, error) = match Box::pin(probe.status(self.config.timeout)).await {
                        Ok(code) if (200..300).contains(&code) => {
                            (Some(format!("HTTP {code}")), None)
                        }
                        Ok(code) => (
                            Some(format!("HTTP {code}")),
                            Some(format!("HTTP {code} from {path}")),
                        ),
                        Err(error) => (None, Some(error)),
                    };
                    Outcome {
                        mode: Mode::Poll,
                        verdict: Verdict::Counted(error.is_none()),
                        answer,
                        error,
                        latency: start.elapsed(),
                        measured: true,
                    }
                }
            };
            self.record(outcome);
            self.pause().await;
        }
    }

    /// The Health service: Watch while the upstream has it, Check every interval
    /// once it says UNIMPLEMENTED; reconnects every interval, over the connection
    /// it shares with the other upstreams on its address.
    async fn health(&mut self, target: &Target) {
        let options = Options {
            timeout: Some(self.config.timeout),
            headers: self.config.headers.clone().into_iter().collect(),
        };
        let mut watch = self.config.watch;
        loop {
            let start = Instant::now();
            // Held as long as the client is used: the shared connection lives on it.
            let (client, _lease) = match Box::pin(self.pool.client(target, options.clone())).await {
                Ok(shared) => shared,
                Err(error) => {
                    self.record(Outcome::failed(
                        Mode::Poll,
                        error.to_string(),
                        start.elapsed(),
                    ));
                    self.pause().await;
                    continue;
                }
            };
            loop {
                let start = Instant::now();
                if watch {
                    let error = match self.watch(&client).await {
                        Err(error) if error.code() == tonic::Code::Unimplemented => {
                            // The spec: never retry a Watch the server does not have.
                            watch = false;
                            continue;
                        }
                        Err(error) => error.to_string(),
                        Ok(()) => "the Watch stream ended".to_owned(),
                    };
                    self.record(Outcome::failed(Mode::Watch, error, start.elapsed()));
                    // The channel reconnects by itself; the next Watch is the reconnect.
                } else {
                    let outcome = match Box::pin(client.check(&self.config.service)).await {
                        Ok(status) => Outcome {
                            mode: Mode::Poll,
                            answer: Some(status.as_str_name().to_owned()),
                            error: None,
                            latency: start.elapsed(),
                            measured: true,
                            verdict: Verdict::Counted(status == ServingStatus::Serving),
                        },
                        Err(error) => {
                            Outcome::failed(Mode::Poll, error.to_string(), start.elapsed())
                        }
                    };
                    self.record(outcome);
                }
                self.pause().await;
            }
        }
    }

    /// One Watch call: the first message must come within the timeout; each
    /// message after it is taken at once. Returns when the stream ends.
    async fn watch(&mut self, client: &NativeClient) -> Result<(), Error> {
        let start = Instant::now();
        let deadline = self.config.timeout;
        let (mut stream, mut message) = tokio::time::timeout(
            deadline,
            Box::pin(async {
                let mut stream = client.open_watch(&self.config.service).await?;
                let first = stream.message().await?;
                Ok::<_, Error>((stream, first))
            }),
        )
        .await
        .map_err(|_| Error::Deadline(deadline))??;
        let latency = start.elapsed();
        let mut measured = true;
        while let Some(reply) = message {
            let answer = reply.status();
            let shown = match answer {
                ServingStatus::Serving => ServingStatus::Serving,
                ServingStatus::Unknown => ServingStatus::Unknown,
                // Not serving, or not knowing the service: either way not usable.
                _ => ServingStatus::NotServing,
            };
            self.record(Outcome {
                mode: Mode::Watch,
                answer: Some(answer.as_str_name().to_owned()),
                error: None,
                latency,
                measured: std::mem::take(&mut measured),
                verdict: Verdict::Taken(shown),
            });
            message = stream.message().await?;
        }
        Ok(())
    }

    /// Feeds the thresholds, moves the status if they settle one, and updates the report.
    fn record(&mut self, outcome: Outcome) {
        if outcome.measured {
            for observer in self.observers.iter() {
                observer.probed(&self.config.name, outcome.latency);
            }
        }
        let settled = match outcome.verdict {
            Verdict::Taken(status) => {
                self.thresholds.take(status);
                Some(status)
            }
            Verdict::Counted(success) => self.thresholds.record(success),
        };
        let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let mut reports = self.reports.write().unwrap_or_else(|e| e.into_inner());
        let report = reports
            .entry(self.config.name.clone())
            .or_insert_with(|| Report {
                target: self.config.target.clone(),
                protocol: self.config.protocol,
                mode: outcome.mode,
                status: self.status.as_str_name().into(),
                probed_by: None,
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
            let detail = outcome
                .error
                .as_deref()
                .or(outcome.answer.as_deref())
                .unwrap_or("");
            let reason = Reason {
                detail,
                ..Reason::of(Cause::Monitor)
            };
            // Ignored while healthweb itself is shut down: it stays NOT_SERVING.
            let _ = self.registry.set_because(&self.config.name, status, reason);
        }
        report.probed_by.clone_from(&self.replica);
        report.mode = outcome.mode;
        report.status = self.status.as_str_name().into();
        report.answer = outcome.answer;
        report.error = outcome.error;
        report.latency_ms = Some((outcome.latency.as_secs_f64() * 1e6).round() / 1e3);
        report.probed_at = Some(now);
        report.successes = self.thresholds.successes;
        report.failures = self.thresholds.failures;
    }

    /// Waits one interval, spread by [`JITTER`].
    async fn pause(&self) {
        tokio::time::sleep(jitter(self.config.interval, JITTER)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every monitored upstream holds one of these for as long as it is
    /// monitored: the short steps' large futures must stay boxed.
    #[test]
    fn a_task_waiting_on_its_upstream_is_small() {
        let config: UpstreamConfig =
            toml::from_str("name = \"a\"\ntarget = \"http://127.0.0.1:1\"").unwrap();
        let task = Upstream::new(
            Arc::new(config),
            HealthRegistry::new(),
            Reports::default(),
            ProbeObservers::from([]),
            None,
            Pool::new(1),
        )
        .run();
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "an upstream's task is {size} bytes");
    }
}
