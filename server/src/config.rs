//! The statuses healthweb starts with: `--service NAME=STATUS` flags and a TOML
//! file, re-read on SIGHUP without touching open Watch streams.
//!
//! ```toml
//! # "" is the whole server.
//! [services]
//! "" = "SERVING"
//! payments = "NOT_SERVING"
//! ```
//!
//! `[[upstream]]` entries (see [`crate::upstream`]) add monitored services. A
//! `[history]` table says where history is kept (read at start only; flags and
//! environment variables win):
//!
//! ```toml
//! [history]
//! location = "postgres://healthweb@db:5432/healthweb?sslmode=require" # a file, or "memory"
//! password_file = "/run/secrets/healthweb-db-password"
//! [history.tls]                     # for PostgreSQL over TLS; as [upstream.tls]
//! ca = "db-ca.pem"
//! ```
//!
//! `[[alert]]` receivers and `[[alert_rule]]` rules (see [`crate::alert::config`])
//! say who hears of an outage, `[[maintenance]]` windows when they do not
//! (see [`crate::alert::maintenance`]), with `public_url`, the page's address, for links
//! (read at start only).
//!
//! A flag wins over the file for the same name. On reload, a service the file no
//! longer names is removed; one set through the admin API and never named by the
//! flags or the file is left alone. A file that fails to load changes nothing.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use healthweb_client::native::TlsSettings;
use healthweb_proto::pb::health_check_response::ServingStatus;
use serde::Deserialize;

use crate::{
    alert::{Receiver, Rule, maintenance::Scheduled},
    history::{HistorySettings, Location},
    registry::{Cause, HealthRegistry, Reason, RegistryError},
    status::{ServiceStatus, StatusWord},
    upstream::UpstreamConfig,
};

/// The config file's contents.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Service name to status.
    #[serde(default)]
    pub services: BTreeMap<String, StatusWord>,
    /// Monitored upstreams.
    #[serde(default)]
    pub upstream: Vec<UpstreamConfig>,
    /// Where history is kept.
    pub history: Option<HistoryTable>,
    /// Alert receivers.
    #[serde(default)]
    pub alert: Vec<Receiver>,
    /// Alert rules.
    #[serde(default)]
    pub alert_rule: Vec<Rule>,
    /// The status page's public address, for the alerts' links.
    pub public_url: Option<String>,
    /// Maintenance windows.
    #[serde(default)]
    pub maintenance: Vec<Scheduled>,
}

/// The `[history]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryTable {
    /// A `postgres://` URL, an SQLite file, or `memory`.
    pub location: Option<String>,
    /// For PostgreSQL: a file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// For PostgreSQL over TLS.
    #[serde(default)]
    pub tls: TlsSettings,
}

impl HistoryTable {
    /// Fills what `settings` leaves unset (the flags win).
    pub fn fill(self, settings: &mut HistorySettings) {
        if settings.location == Location::Default
            && let Some(location) = &self.location
        {
            settings.location = Location::parse(location);
        }
        if settings.password_file.is_none() {
            settings.password_file = self.password_file;
        }
        if settings.tls == TlsSettings::default() {
            settings.tls = self.tls;
        }
    }
}

/// Why the config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser says, with line and column.
        source: toml::de::Error,
    },
    /// The file parses but does not make sense.
    #[error("invalid config file {path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl ConfigFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks `text`, the contents of `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let file: Self = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            problem,
        };
        let mut names = std::collections::BTreeSet::new();
        for upstream in &file.upstream {
            if let Some(problem) = upstream.problem() {
                return Err(invalid(problem));
            }
            if file.services.contains_key(&upstream.name) || !names.insert(&upstream.name) {
                return Err(invalid(format!(
                    "the name {:?} is used twice",
                    upstream.name
                )));
            }
        }
        let mut receivers = std::collections::BTreeSet::new();
        for receiver in &file.alert {
            if !receivers.insert(&receiver.name) {
                return Err(invalid(format!(
                    "two [[alert]] receivers are named {:?}",
                    receiver.name
                )));
            }
        }
        let mut rules = std::collections::BTreeSet::new();
        for rule in &file.alert_rule {
            if let Some(problem) = rule.problem(&file.alert) {
                return Err(invalid(problem));
            }
            if !rules.insert(&rule.name) {
                return Err(invalid(format!(
                    "two [[alert_rule]] rules are named {:?}",
                    rule.name
                )));
            }
        }
        Ok(file)
    }
}

/// The flags and file behind the registry's configured services, and what was
/// applied last, so a reload knows what to remove.
#[derive(Debug)]
pub struct Configured {
    flags: Vec<ServiceStatus>,
    file: Option<PathBuf>,
    applied: BTreeMap<String, ServingStatus>,
    /// Whether it was applied before: later applications are reloads.
    loaded: bool,
}

impl Configured {
    /// Statuses from `flags` and, if given, the TOML `file`.
    pub fn new(flags: Vec<ServiceStatus>, file: Option<PathBuf>) -> Self {
        Self {
            flags,
            file,
            applied: BTreeMap::new(),
            loaded: false,
        }
    }

    /// (Re)loads the file and brings the registry's configured statuses in line.
    /// On error nothing changes. Returns the upstreams the file lists, for the
    /// monitor.
    pub fn apply(&mut self, registry: &HealthRegistry) -> Result<Vec<UpstreamConfig>, ConfigError> {
        let file = match &self.file {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let mut wanted: BTreeMap<String, ServingStatus> = file
            .services
            .into_iter()
            .map(|(name, word)| (name, word.0))
            .collect();
        for flag in &self.flags {
            wanted.insert(flag.name.clone(), flag.status.0);
        }
        let reason = Reason::of(if self.loaded {
            Cause::Reload
        } else {
            Cause::Config
        });
        for (name, status) in &wanted {
            match registry.set_because(name, *status, reason) {
                // While shut down the registry keeps everything NOT_SERVING.
                Ok(()) | Err(RegistryError::ShutDown) => {}
                Err(error) => tracing::warn!(%error, service = %name, "not applied"),
            }
        }
        for name in self.applied.keys().filter(|n| !wanted.contains_key(*n)) {
            if name.is_empty() {
                // The whole server is always registered; back to its default.
                let _ = registry.set_because(name, ServingStatus::Serving, reason);
            } else {
                let _ = registry.remove_because(name, reason);
            }
        }
        self.applied = wanted;
        self.loaded = true;
        Ok(file.upstream)
    }

    /// The config file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_adds_changes_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("healthweb.toml");
        std::fs::write(&path, "[services]\na = \"SERVING\"\nb = \"NOT_SERVING\"\n").unwrap();
        let flags = vec!["c=UNKNOWN".parse().unwrap()];
        let mut config = Configured::new(flags, Some(path.clone()));
        let registry = HealthRegistry::new();
        assert!(config.apply(&registry).unwrap().is_empty());
        assert_eq!(registry.check("b"), Some(ServingStatus::NotServing));

        std::fs::write(&path, "[services]\nb = \"SERVING\"\n").unwrap();
        config.apply(&registry).unwrap();
        assert_eq!(registry.check("a"), None);
        assert_eq!(registry.check("b"), Some(ServingStatus::Serving));
        assert_eq!(registry.check("c"), Some(ServingStatus::Unknown));

        std::fs::write(&path, "[services]\nb = \"BROKEN\"\n").unwrap();
        let err = config.apply(&registry).unwrap_err().to_string();
        assert!(err.contains("SERVING, NOT_SERVING or UNKNOWN"), "{err}");
        assert_eq!(registry.check("b"), Some(ServingStatus::Serving));
    }
}
