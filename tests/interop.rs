//! A gRPC client no one here wrote: Python's grpcio with grpcio-health-checking,
//! calling Check, Watch and List natively, and grpcio-reflection discovering
//! the service as grpcurl does. `make test` installs it in
//! `.tools/venv`; HEALTHWEB_PYTHON points elsewhere.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc::Receiver,
};

use healthweb_proto::pb::health_check_response::ServingStatus;

use crate::util::{LIMIT, TestServer, drain, lines};

pub fn python() -> PathBuf {
    if let Ok(path) = std::env::var("HEALTHWEB_PYTHON") {
        return path.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with grpcio at {}: run `make test-deps` (or set HEALTHWEB_PYTHON)",
        venv.display()
    );
    venv
}

// Multi-threaded: this test blocks on the child's output while the server runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_checks_watches_and_lists() {
    let server = TestServer::serving([("payments", ServingStatus::Serving)]).await;
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/grpcio_client.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(server.addr.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let rx = lines(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(LIMIT)
            .unwrap_or_else(|_| panic!("grpcio client stalled after {lines:?}"));
        if line == "watch payments SERVING" {
            server
                .registry
                .set("payments", ServingStatus::NotServing)
                .unwrap();
        }
        let done = line == "done";
        lines.push(line);
        if done {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(
        lines,
        [
            "check '' SERVING",
            "check payments SERVING",
            "check missing NOT_FOUND unknown service \"missing\"",
            "list ''=SERVING payments=SERVING",
            "watch payments SERVING",
            "watch payments NOT_SERVING",
            "watch missing SERVICE_UNKNOWN",
            "reflection grpc.health.v1.Health grpc.reflection.v1alpha.ServerReflection healthweb.v1.History healthweb.v1.Statuses",
            "reflection file grpc/health/v1/health.proto",
            "done",
        ]
    );
}

/// A grpcio health server (tests/interop/grpcio_server.py), killed when dropped.
pub struct Peer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    pub port: u16,
}

impl Peer {
    /// Starts it with `args`: TLS files (cert, key, optional client CA), and the
    /// options of tests/interop/grpcio_server.py (`--require-header`, `--refuse-gzip`,
    /// `--answer-gzip`).
    pub fn start(args: &[&str]) -> Self {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/grpcio_server.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(args)
            // grpcio logs every refused handshake; the tests assert on those themselves.
            .env("GRPC_VERBOSITY", "ERROR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut peer = Self {
            stdin: child.stdin.take().unwrap(),
            stdout: lines(child.stdout.take().unwrap()),
            stderr: lines(child.stderr.take().unwrap()),
            child,
            port: 0,
        };
        let line = peer.line("its port");
        peer.port = line
            .parse()
            .unwrap_or_else(|_| panic!("grpcio server said {line:?}"));
        peer
    }

    /// Sets `name` ("" for the server) to `status`, as the grpcio servicer spells it.
    pub fn set(&mut self, name: &str, status: &str) {
        use std::io::Write;
        let name = if name.is_empty() { "-" } else { name };
        writeln!(self.stdin, "{name} {status}").unwrap();
        assert_eq!(self.line("ok"), "ok");
    }

    /// The next line of its stdout, within [`LIMIT`].
    fn line(&self, what: &str) -> String {
        self.stdout.recv_timeout(LIMIT).unwrap_or_else(|_| {
            panic!(
                "the grpcio server printed no {what} within {LIMIT:?}; its stderr: {:#?}",
                drain(&self.stderr)
            )
        })
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
