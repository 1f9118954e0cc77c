//! A `grpc.health.v1` client with one core for two worlds: the browser (wasm, gRPC-Web
//! over `fetch`) and native programs such as the command-line probe (tonic).
//!
//! # Layout
//! - [`core`]: [`Client`], generic over a [`Transport`]: Check and List under a deadline.
//! - [`watch`]: Watch as the spec's client rules want it (reconnect with backoff, poll
//!   Check on UNIMPLEMENTED) and its [`ConnState`].
//! - [`backoff`]: the exponential backoff policy between reconnect attempts.
//! - [`error`]: [`Error`], which always carries a gRPC code name.
//! - [`frames`]: gRPC-Web framing, platform-free.
//! - `rt`: what the core needs from its platform, a timer and a random number.
//! - `grpc_web` (wasm): the [`Transport`] over `fetch`.
//! - `js` (wasm): the JavaScript API, `HealthClient` and `WatchHandle`; `js_types` its
//!   TypeScript declarations.
//! - `tonic_transport` (native): the [`Transport`] over any tonic channel.
//! - `native` (feature `native`): a [`Client`] over tonic's HTTP/2 channel.

pub mod backoff;
pub mod core;
pub mod error;
pub mod frames;
#[cfg(target_arch = "wasm32")]
pub mod grpc_web;
#[cfg(target_arch = "wasm32")]
pub mod js;
#[cfg(target_arch = "wasm32")]
mod js_types;
#[cfg(feature = "native")]
pub mod native;
mod rt;
#[cfg(not(target_arch = "wasm32"))]
mod tonic_transport;
pub mod watch;

pub use crate::{
    core::{Call, Client, Options, Transport, WatchStream},
    error::Error,
    watch::{ConnState, Update},
};
pub use healthweb_proto::pb::health_check_response::ServingStatus;
