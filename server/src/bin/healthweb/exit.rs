//! The exit codes, in one place: grpc-health-probe's, so scripts written for it
//! work unchanged, and the same meanings for every subcommand.

use std::process::ExitCode;

/// How `healthweb` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: it worked (for `check`: the service is SERVING).
    Success = 0,
    /// 1: the arguments, settings or config files are unusable.
    BadArguments = 1,
    /// 2: cannot listen, or cannot connect (refused, TLS handshake, connect timeout).
    ConnectionFailure = 2,
    /// 3: the other side refused the request (for `check`: the RPC failed).
    RpcFailure = 3,
    /// 4: for `check`: the server answered, and not SERVING.
    NotServing = 4,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}
