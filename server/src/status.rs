//! The status words people type (`SERVING`, `NOT_SERVING`, `UNKNOWN`), parsed
//! once for the command line, the config file and the admin API.

use std::{fmt, str::FromStr};

use healthweb_proto::pb::health_check_response::ServingStatus;
use serde::{Deserialize, Deserializer, de};

/// A status that can be set on a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusWord(pub ServingStatus);

/// The words accepted, for error messages.
pub const ACCEPTED: &str = "SERVING, NOT_SERVING or UNKNOWN";

/// A word that is not a settable status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}: expected {ACCEPTED}")]
pub struct BadStatus(pub String);

impl FromStr for StatusWord {
    type Err = BadStatus;

    fn from_str(word: &str) -> Result<Self, BadStatus> {
        match word.trim().to_ascii_uppercase().as_str() {
            "SERVING" => Ok(Self(ServingStatus::Serving)),
            "NOT_SERVING" => Ok(Self(ServingStatus::NotServing)),
            "UNKNOWN" => Ok(Self(ServingStatus::Unknown)),
            _ => Err(BadStatus(word.to_owned())),
        }
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str_name())
    }
}

impl<'de> Deserialize<'de> for StatusWord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        word.parse().map_err(de::Error::custom)
    }
}

/// One `NAME=STATUS` pair from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStatus {
    /// The service name; empty for the whole server.
    pub name: String,
    /// Its status.
    pub status: StatusWord,
}

impl FromStr for ServiceStatus {
    type Err = String;

    fn from_str(pair: &str) -> Result<Self, String> {
        let (name, word) = pair
            .rsplit_once('=')
            .ok_or_else(|| format!("{pair:?} is not NAME=STATUS (for example payments=SERVING, or =SERVING for the whole server)"))?;
        let status = word.parse().map_err(|e: BadStatus| e.to_string())?;
        Ok(Self {
            name: name.to_owned(),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_words_and_pairs() {
        assert_eq!("serving".parse(), Ok(StatusWord(ServingStatus::Serving)));
        let err = "SERVICE_UNKNOWN".parse::<StatusWord>().unwrap_err();
        assert!(err.to_string().contains("SERVING, NOT_SERVING or UNKNOWN"));
        let pair: ServiceStatus = "a.b=NOT_SERVING".parse().unwrap();
        assert_eq!(pair.name, "a.b");
        assert_eq!(pair.status.0, ServingStatus::NotServing);
        let whole: ServiceStatus = "=UNKNOWN".parse().unwrap();
        assert_eq!(whole.name, "");
        assert!("payments".parse::<ServiceStatus>().is_err());
    }
}
