//! `[[alert]]` receivers and `[[alert_rule]]` rules of the config file. Every
//! entry is checked as it is read, so a bad URL, a bad glob or an unknown
//! receiver is refused with the line it is on (toml's error carries it).
//!
//! ```toml
//! [[alert]]
//! name = "ops"
//! type = "webhook"                    # webhook | slack | ntfy
//! url = "https://hooks.example.com/healthweb"
//! # url_file = "/run/secrets/hook-url" or url_env = "OPS_HOOK_URL" (a URL with a token)
//! secret_file = "/run/secrets/hook-key"  # or secret_env: HMAC-SHA256 key (webhook)
//! timeout = "5s"                      # each attempt
//! backoff = "1s"                      # the first retry's delay, doubled each time (jittered)
//! max_backoff = "1m"
//! deadline = "10m"                    # retried until then, then recorded as failed
//!
//! [[alert_rule]]
//! name = "payments"
//! services = ["payments", "db-*"]     # names and glob patterns (upstreams by name)
//! receivers = ["ops"]
//! failure_threshold = "30s"           # bad this long before it fires
//! success_threshold = "10s"           # good this long before it resolves
//! send_resolved = true
//! repeat_interval = "1h"              # reminders while it stays bad (none if unset)
//! bad = ["NOT_SERVING"]               # NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN (removed)
//! ```
//!
//! Secrets (the URL when it comes from a file or the environment, the HMAC key)
//! are never printed: `Debug` shows the URL's scheme and host only.

use std::{fmt, path::PathBuf, time::Duration};

use healthweb_proto::pb::health_check_response::ServingStatus;
use serde::{Deserialize, Deserializer, de};

use crate::upstream::duration;

/// The kinds of receiver, each with its own body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A POST of `healthweb.alert.v1` JSON, signed when a secret is set.
    Webhook,
    /// A Slack-compatible incoming webhook (text and blocks).
    Slack,
    /// An ntfy topic URL (title, priority and tags in headers).
    Ntfy,
}

/// An `[[alert]]` receiver, checked and with its secrets read.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawReceiver")]
pub struct Receiver {
    /// Its name, for rules, logs and `/metrics`.
    pub name: String,
    /// What it speaks.
    pub kind: Kind,
    /// Where notifications go (may hold a token: never printed).
    pub url: http::Uri,
    /// The HMAC-SHA256 key, for webhooks.
    pub secret: Option<Vec<u8>>,
    /// The deadline of each attempt.
    pub timeout: Duration,
    /// The first retry's delay; doubled each time up to `max_backoff`.
    pub backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
    /// Retried until this long after the notification was made.
    pub deadline: Duration,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("host", &self.url.host())
            .field("signed", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    name: String,
    #[serde(rename = "type")]
    kind: Kind,
    url: Option<String>,
    url_file: Option<PathBuf>,
    url_env: Option<String>,
    secret_file: Option<PathBuf>,
    secret_env: Option<String>,
    #[serde(default = "defaults::timeout", deserialize_with = "duration")]
    timeout: Duration,
    #[serde(default = "defaults::backoff", deserialize_with = "duration")]
    backoff: Duration,
    #[serde(default = "defaults::max_backoff", deserialize_with = "duration")]
    max_backoff: Duration,
    #[serde(default = "defaults::deadline", deserialize_with = "duration")]
    deadline: Duration,
}

mod defaults {
    use std::time::Duration;

    pub fn timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn backoff() -> Duration {
        Duration::from_secs(1)
    }
    pub fn max_backoff() -> Duration {
        Duration::from_secs(60)
    }
    pub fn deadline() -> Duration {
        Duration::from_secs(600)
    }
    pub fn yes() -> bool {
        true
    }
    pub fn bad() -> Vec<super::BadWord> {
        vec![super::BadWord(super::ServingStatus::NotServing)]
    }
}

/// A secret from a file (its first line) or an environment variable.
fn secret(
    file: Option<PathBuf>,
    env: Option<String>,
    what: &str,
) -> Result<Option<String>, String> {
    match (file, env) {
        (Some(_), Some(_)) => Err(format!("give {what}_file or {what}_env, not both")),
        (Some(path), None) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {what}_file {}: {e}", path.display()))?;
            let line = text.lines().next().unwrap_or("").trim();
            if line.is_empty() {
                return Err(format!("{what}_file {} is empty", path.display()));
            }
            Ok(Some(line.to_owned()))
        }
        (None, Some(var)) => match std::env::var(&var) {
            Ok(value) if !value.trim().is_empty() => Ok(Some(value.trim().to_owned())),
            _ => Err(format!("{what}_env: the variable {var} is not set")),
        },
        (None, None) => Ok(None),
    }
}

impl TryFrom<RawReceiver> for Receiver {
    type Error = String;

    fn try_from(raw: RawReceiver) -> Result<Self, String> {
        let name = raw.name;
        let fail = |problem: String| format!("alert {name:?}: {problem}");
        if name.is_empty() {
            return Err("an [[alert]] needs a non-empty name".into());
        }
        let from_secret = raw.url_file.is_some() || raw.url_env.is_some();
        let url = match (
            raw.url,
            secret(raw.url_file, raw.url_env, "url").map_err(fail)?,
        ) {
            (Some(url), None) => url,
            (None, Some(url)) => url,
            _ => return Err(fail("give one of url, url_file or url_env".into())),
        };
        // A URL read from a secret is not repeated in the error.
        let shown = if from_secret {
            "(from the secret)"
        } else {
            &url
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e| fail(format!("bad url {shown}: {e}")))?;
        let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
        if !scheme_ok || uri.host().is_none_or(str::is_empty) {
            return Err(fail(format!(
                "bad url {shown}: write an absolute http:// or https:// URL"
            )));
        }
        let secret = secret(raw.secret_file, raw.secret_env, "secret").map_err(fail)?;
        if secret.is_some() && raw.kind != Kind::Webhook {
            return Err(fail(
                "only a webhook is signed (secret_file, secret_env)".into(),
            ));
        }
        if raw.timeout.is_zero() || raw.backoff.is_zero() || raw.deadline.is_zero() {
            return Err(fail(
                "timeout, backoff and deadline must be above zero".into(),
            ));
        }
        if raw.max_backoff < raw.backoff {
            return Err(fail("max_backoff is shorter than backoff".into()));
        }
        Ok(Self {
            name,
            kind: raw.kind,
            url: uri,
            secret: secret.map(String::into_bytes),
            timeout: raw.timeout,
            backoff: raw.backoff,
            max_backoff: raw.max_backoff,
            deadline: raw.deadline,
        })
    }
}

/// A status that counts as bad for a rule (`SERVICE_UNKNOWN`: removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadWord(pub ServingStatus);

impl<'de> Deserialize<'de> for BadWord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        ServingStatus::from_str_name(&word.to_ascii_uppercase())
            .filter(|s| *s != ServingStatus::Serving)
            .map(Self)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "{word:?} cannot be bad: write NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN"
                ))
            })
    }
}

/// A service name or a glob pattern, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceGlob(glob::Pattern);

impl ServiceGlob {
    /// Whether `service` is one it names.
    pub fn matches(&self, service: &str) -> bool {
        self.0.matches(service)
    }

    /// The compiled pattern.
    pub fn pattern(&self) -> &glob::Pattern {
        &self.0
    }
}

impl fmt::Display for ServiceGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for ServiceGlob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        glob::Pattern::new(&text)
            .map(Self)
            .map_err(|e| de::Error::custom(format!("bad glob {text:?}: {e}")))
    }
}

/// An `[[alert_rule]]`: which services, to whom, and when.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Its name, in the notifications.
    pub name: String,
    /// The services it covers: names and glob patterns.
    pub services: Vec<ServiceGlob>,
    /// The `[[alert]]` receivers it notifies, by name.
    pub receivers: Vec<String>,
    /// Bad this long before it fires: no alert for a blip.
    #[serde(default, deserialize_with = "duration")]
    pub failure_threshold: Duration,
    /// Good this long before it resolves.
    #[serde(default, deserialize_with = "duration")]
    pub success_threshold: Duration,
    /// Whether the resolution is sent.
    #[serde(default = "defaults::yes")]
    pub send_resolved: bool,
    /// Reminders while it stays bad.
    #[serde(default, deserialize_with = "some_duration")]
    pub repeat_interval: Option<Duration>,
    /// The statuses that count as bad.
    #[serde(default = "defaults::bad")]
    pub bad: Vec<BadWord>,
}

impl Rule {
    /// Whether it covers `service`.
    pub fn covers(&self, service: &str) -> bool {
        self.services.iter().any(|g| g.matches(service))
    }

    /// Whether `status` is bad for it.
    pub fn is_bad(&self, status: ServingStatus) -> bool {
        self.bad.iter().any(|b| b.0 == status)
    }

    /// What is wrong with it, given the receivers' names.
    pub fn problem(&self, receivers: &[Receiver]) -> Option<String> {
        let name = &self.name;
        if name.is_empty() {
            return Some("an [[alert_rule]] needs a non-empty name".into());
        }
        if self.services.is_empty() || self.receivers.is_empty() {
            return Some(format!("alert_rule {name:?}: name services and receivers"));
        }
        if let Some(unknown) = self
            .receivers
            .iter()
            .find(|r| !receivers.iter().any(|known| &known.name == *r))
        {
            return Some(format!(
                "alert_rule {name:?}: no [[alert]] is named {unknown:?}"
            ));
        }
        if self.repeat_interval.is_some_and(|d| d.is_zero()) {
            return Some(format!(
                "alert_rule {name:?}: repeat_interval must be above zero"
            ));
        }
        None
    }
}

fn some_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    duration(deserializer).map(Some)
}
