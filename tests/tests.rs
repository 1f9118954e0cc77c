//! healthweb's integration tests: every one talks to a real server on
//! `127.0.0.1:0` (in this process, or the real `healthweb` binary) through a real
//! client: tonic's, hyper's, curl, or Python's grpcio.
//!
//! # Layout
//! One module per subject: `check`, `watch`, `list` (native gRPC and the spec),
//! `grpc_web` (binary and text over HTTP/1.1 and HTTP/2), `curl` (the README's
//! command lines), `static_page` (`/healthz` and the www files), `reflection`,
//! `cors`, `config` (SIGHUP reload), `conformance` (every answer beside the
//! reference, tonic-health behind tonic-web), `admin`, `shutdown` (SIGTERM),
//! `bad_input`, `compression` (gzip-compressed calls on every wire),
//! `interop` (Python grpcio), `tls`, `probe` (`healthweb check`),
//! `monitor` (upstreams), `release` (the release binary's dynamic section),
//! `attack` (hostile and broken connections), `history` (History, badges,
//! metrics), `replicas` (several healthweb on one PostgreSQL), `default_history`
//! (where history goes without `--history`), `deploy` (the Kubernetes and compose
//! files), `watch_all` (every service on one stream), and the shared harness: `util`, and `pg`, a throwaway PostgreSQL.

mod admin;
mod alerts;
mod attack;
mod bad_input;
mod check;
mod compression;
mod config;
mod conformance;
mod cors;
mod curl;
mod default_history;
mod deploy;
mod grpc_web;
mod history;
mod interop;
mod list;
mod monitor;
mod pg;
mod probe;
mod reflection;
mod release;
mod replicas;
mod shutdown;
mod static_page;
mod tls;
mod util;
mod watch;
mod watch_all;
