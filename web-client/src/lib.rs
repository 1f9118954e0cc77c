//! A `grpc.health.v1` client (and of healthweb's `healthweb.v1.History`) with one core
//! for two worlds: the browser (wasm, gRPC-Web over `fetch`) and native programs such
//! as the command-line probe (tonic).
//!
//! # Browser builds
//! - default (feature `tonic-web-wasm-client`): tonic's gRPC client over
//!   tonic-web-wasm-client, through the same [`Transport`] impl as native calls.
//! - `fetch-lite` (with `--no-default-features`): a hand-written gRPC-Web transport
//!   straight over `fetch`, under half the bytes, for embedders who count them.
//!
//! The JavaScript API is the same in both; exactly one of the two must be on.
//!
//! # Layout
//! - [`core`]: [`Client`], generic over a [`Transport`]: Check and List under a deadline;
//!   the transport moves encoded messages, the core encodes and decodes them.
//! - [`history`]: healthweb's History service (transitions, uptime, probe latency).
//! - [`watch`]: Watch as the spec's client rules want it (reconnect with backoff, poll
//!   Check on UNIMPLEMENTED) and its [`ConnState`].
//! - [`watch_all`]: every service on one stream (`healthweb.v1.Statuses`), resumed
//!   after a reconnect from the last token.
//! - [`backoff`]: the exponential backoff policy between reconnect attempts.
//! - [`error`]: [`Error`], which always carries a gRPC code name.
//! - `rt`: what the core needs from its platform, a timer and a random number.
//! - `scripted` (tests): a [`Transport`] that answers from a script, for the unit tests
//!   of Watch, WatchAll and History.
//! - `tonic_transport` (native, and the default browser build): the [`Transport`] over
//!   tonic's gRPC client (`tonic::client::Grpc`) on any tonic channel.
//! - `tonic_wasm` (wasm, default): that channel in the browser, tonic-web-wasm-client.
//! - `fetch_lite` (wasm, `fetch-lite`): the [`Transport`] straight over `fetch`, with
//!   [`frames`], its gRPC-Web framing (platform-free, so unit-tested natively).
//! - `js` (wasm): the JavaScript API, `HealthClient` and `WatchHandle`; `js_replies`
//!   turns List's and History's replies into plain objects; `js_types` the TypeScript
//!   declarations.
//! - `native` (feature `native`): a [`Client`] over tonic's HTTP/2 channel.

#[cfg(all(
    target_arch = "wasm32",
    feature = "fetch-lite",
    feature = "tonic-web-wasm-client"
))]
compile_error!(
    "fetch-lite replaces tonic-web-wasm-client: build with --no-default-features --features fetch-lite"
);
#[cfg(all(
    target_arch = "wasm32",
    not(feature = "fetch-lite"),
    not(feature = "tonic-web-wasm-client")
))]
compile_error!(
    "the browser build needs a transport: the default feature tonic-web-wasm-client, or fetch-lite"
);

// std's dlmalloc is 7 KB of the module; talc does the same job, single-threaded, in less
// (2.9 KB gzipped saved). It is the global allocator of any wasm program that links this
// crate, so a Rust program embedding it cannot pick another.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

pub mod backoff;
pub mod core;
pub mod error;
#[cfg(all(target_arch = "wasm32", feature = "fetch-lite"))]
pub mod fetch_lite;
#[cfg(any(feature = "fetch-lite", test))]
pub mod frames;
pub mod history;
#[cfg(target_arch = "wasm32")]
pub mod js;
#[cfg(target_arch = "wasm32")]
mod js_replies;
#[cfg(target_arch = "wasm32")]
mod js_types;
#[cfg(feature = "native")]
pub mod native;
mod rt;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod scripted;
#[cfg(any(not(target_arch = "wasm32"), feature = "tonic-web-wasm-client"))]
mod tonic_transport;
#[cfg(all(target_arch = "wasm32", feature = "tonic-web-wasm-client"))]
pub mod tonic_wasm;
pub mod watch;
pub mod watch_all;

pub use crate::{
    core::{Call, Client, MessageStream, Options, Transport, Watch},
    error::Error,
    history::{EncodedHistory, History, HistoryQuery},
    watch::{ConnState, Update},
    watch_all::AllUpdate,
};
pub use healthweb_proto::pb::health_check_response::ServingStatus;
