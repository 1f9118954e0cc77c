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

use std::{collections::BTreeMap, fmt, time::Duration};

use healthweb_client::native::{Protocol, TlsSettings};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How healthweb asks an upstream: its Health service over one of the client's
/// wires, or a plain HTTP GET (any 2xx is healthy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `grpc.health.v1.Health` (Watch, else Check) over this wire.
    Health(Protocol),
    /// `protocol = "http"`: a GET of `service` (a path).
    Http,
}

impl Default for Via {
    fn default() -> Self {
        Self::Health(Protocol::Grpc)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Health(protocol) => protocol.fmt(f),
            Self::Http => f.write_str("http"),
        }
    }
}

impl<'de> Deserialize<'de> for Via {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        if word == "http" {
            return Ok(Self::Http);
        }
        word.parse().map(Self::Health).map_err(|_| {
            serde::de::Error::unknown_variant(&word, &["grpc", "grpc-web", "grpc-web-text", "http"])
        })
    }
}

impl Serialize for Via {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
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
    pub protocol: Via,
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
    pub tls: TlsSettings,
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

/// A duration as people write it (`"500ms"`, `"5s"`), for the config file.
pub(crate) fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
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
        if self.protocol == Via::Http && !(self.service.is_empty() || self.service.starts_with('/'))
        {
            return Some(format!(
                "upstream {name:?}: for protocol \"http\", service is a path starting with /"
            ));
        }
        None
    }
}
