//! The one error type of the client: every failure has a gRPC code, so a caller (or the
//! JavaScript `Error` built from it) can branch on `NOT_FOUND`, `UNAVAILABLE`, ...

use std::time::Duration;

use tonic::{Code, Status};

/// Why a call failed.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// The server, or the transport on its behalf, ended the call with this status.
    #[error("{}: {message}", code_name(*.code))]
    Status {
        /// The gRPC status code.
        code: Code,
        /// The status message, meant for a person.
        message: String,
    },
    /// No answer arrived within the deadline; the client gave up on its own.
    #[error("DEADLINE_EXCEEDED: no answer within {} ms", millis(*.0))]
    Deadline(Duration),
    /// An option could not be used, such as a header name or value that HTTP forbids.
    #[error("INVALID_ARGUMENT: {0}")]
    InvalidOption(String),
}

impl Error {
    /// An error with a gRPC `code` and a `message` for a person.
    pub fn new(code: Code, message: &str) -> Self {
        Self::Status {
            code,
            message: message.to_owned(),
        }
    }

    /// The gRPC status code of this error.
    pub fn code(&self) -> Code {
        match self {
            Self::Status { code, .. } => *code,
            Self::Deadline(_) => Code::DeadlineExceeded,
            Self::InvalidOption(_) => Code::InvalidArgument,
        }
    }

    /// The code as the spec spells it, for example `"NOT_FOUND"`.
    pub fn code_name(&self) -> &'static str {
        code_name(self.code())
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Self::new(status.code(), status.message())
    }
}

/// Whole milliseconds, in u64 arithmetic (`as_millis` would bring in u128's).
fn millis(limit: Duration) -> u64 {
    limit.as_secs() * 1000 + u64::from(limit.subsec_millis())
}

/// The spec's name for `code` (tonic's `Debug` gives `NotFound`, the spec `NOT_FOUND`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_leads_with_the_code_name() {
        let err = Error::from(Status::not_found("service \"x\" is not known"));
        assert_eq!(err.code_name(), "NOT_FOUND");
        assert_eq!(err.to_string(), "NOT_FOUND: service \"x\" is not known");
        assert_eq!(
            Error::Deadline(Duration::from_millis(250)).code_name(),
            "DEADLINE_EXCEEDED"
        );
    }
}
