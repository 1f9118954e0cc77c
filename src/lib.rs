//! The `grpc.health.v1` protocol, generated once from the canonical
//! `proto/grpc/health/v1/health.proto` (List included) and shared by the healthweb
//! server, the native probe and the browser client.
//!
//! # Layout
//! - [`pb`]: messages, the `Health` server trait and the transport-free client.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC server reflection.

mod generated {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("grpc.health.v1");
}

/// The generated `grpc.health.v1` types under a stable path.
pub mod pb {
    pub use crate::generated::*;
}

/// The encoded `FileDescriptorSet` of `health.proto`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/health_descriptor.bin"));
