//! `[[upstream]]` entries of the config file: the services healthweb monitors and
//! shows as its own, so List, Watch, `/healthz` and the page cover a fleet.
//!
//! ```toml
//! [[upstream]]
//! name = "payments"                 # the service name it gets in healthweb's Health
//! target = "http://10.0.0.5:50051"  # http:// or https://
//! protocol = "grpc"                 # grpc | grpc-web | grpc-web-text | http
//! service = ""                      # the upstream's own service name (for http: the path)
//! interval = "5s"
//! timeout = "1s"
//! healthy_threshold = 1
//! unhealthy_threshold = 3
//! watch = true                      # prefer Watch; false polls Check
//! headers = { authorization = "Bearer ..." }
//! [upstream.tls]                    # for https:// targets
//! ca = "ca.pem"
//! cert = "client.pem"
//! key = "client.key"
//! server_name = "payments.internal"
//! insecure_skip_verify = false
//! ```

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::{Deserialize, Deserializer, Serialize};

/// How healthweb asks an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamProtocol {
    /// Native gRPC health (Watch, else Check).
    #[default]
    Grpc,
    /// gRPC-Web binary over HTTP/1.1.
    GrpcWeb,
    /// gRPC-Web text over HTTP/1.1.
    GrpcWebText,
    /// A plain HTTP GET: any 2xx is healthy.
    Http,
}

/// TLS towards an `https://` upstream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// CA bundle (PEM) to verify the upstream with; the system's roots otherwise.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mTLS.
    pub cert: Option<PathBuf>,
    /// Client key (PEM) for mTLS.
    pub key: Option<PathBuf>,
    /// The name to verify instead of the target's host.
    pub server_name: Option<String>,
    /// Accept any certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// One monitored upstream.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Its service name in healthweb's own Health.
    pub name: String,
    /// `http://HOST:PORT` or `https://HOST:PORT`.
    pub target: String,
    /// How to ask it.
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// The upstream's own service name; for `http`, the path (default `/`).
    #[serde(default)]
    pub service: String,
    /// Time between polls, and between reconnect attempts (jittered by ±10%).
    #[serde(default = "defaults::interval", deserialize_with = "duration")]
    pub interval: Duration,
    /// Deadline of each probe, the connection included.
    #[serde(default = "defaults::timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Consecutive successes before NOT_SERVING turns SERVING.
    #[serde(default = "defaults::healthy")]
    pub healthy_threshold: u32,
    /// Consecutive failures before SERVING turns NOT_SERVING.
    #[serde(default = "defaults::unhealthy")]
    pub unhealthy_threshold: u32,
    /// Prefer Watch (changes arrive at once); `false` polls Check.
    #[serde(default = "defaults::watch")]
    pub watch: bool,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// TLS for `https://` targets.
    #[serde(default)]
    pub tls: UpstreamTls,
}

mod defaults {
    use std::time::Duration;

    pub fn interval() -> Duration {
        Duration::from_secs(5)
    }
    pub fn timeout() -> Duration {
        Duration::from_secs(1)
    }
    pub fn healthy() -> u32 {
        1
    }
    pub fn unhealthy() -> u32 {
        3
    }
    pub fn watch() -> bool {
        true
    }
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "bad duration {text:?} ({e}); write e.g. \"500ms\" or \"5s\""
        ))
    })
}

impl UpstreamConfig {
    /// What is wrong with this entry, if anything.
    pub fn problem(&self) -> Option<String> {
        let name = &self.name;
        if name.is_empty() {
            return Some(
                "an [[upstream]] needs a non-empty name (\"\" is healthweb itself)".into(),
            );
        }
        if !(self.target.starts_with("http://") || self.target.starts_with("https://")) {
            return Some(format!(
                "upstream {name:?}: target {:?} must start with http:// or https://",
                self.target
            ));
        }
        if self.healthy_threshold == 0 || self.unhealthy_threshold == 0 {
            return Some(format!("upstream {name:?}: thresholds count from 1"));
        }
        if self.interval.is_zero() || self.timeout.is_zero() {
            return Some(format!(
                "upstream {name:?}: interval and timeout must be above zero"
            ));
        }
        if self.protocol == UpstreamProtocol::Http
            && !(self.service.is_empty() || self.service.starts_with('/'))
        {
            return Some(format!(
                "upstream {name:?}: for protocol \"http\", service is a path starting with /"
            ));
        }
        None
    }
}
