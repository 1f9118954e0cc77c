//! The protocols, generated once from `proto/` and shared by the healthweb
//! server, the native probe and the browser client: `grpc.health.v1` from the
//! canonical `health.proto` (List included), and healthweb's own
//! `healthweb.v1.History` and `healthweb.v1.Statuses`.
//!
//! # Layout
//! - [`pb`]: Health's messages, its server trait and the transport-free client.
//! - [`history`]: History's, likewise.
//! - [`statuses`]: Statuses' (WatchAll: the whole fleet on one stream), likewise.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC server reflection.
//! - [`codec`]: tonic's prost codec with buffers sized for health messages, in
//!   every generated client and server.
//! - [`wire`]: the wire format (paths, content types, frames, gRPC-Web text,
//!   `grpc-timeout`), for the server, the clients and the tests.

pub mod codec;
pub mod wire;

mod generated {
    #![allow(missing_docs, clippy::all)]
    // Nested as the packages are: History's messages name Health's ServingStatus
    // by its package path.
    pub mod grpc {
        pub mod health {
            pub mod v1 {
                tonic::include_proto!("grpc.health.v1");
            }
        }
    }
    pub mod healthweb {
        pub mod v1 {
            tonic::include_proto!("healthweb.v1");
        }
    }
}

/// The generated `grpc.health.v1` types under a stable path.
pub mod pb {
    pub use crate::generated::grpc::health::v1::*;
}

/// The generated `healthweb.v1` (History) types under a stable path.
pub mod history {
    pub use crate::generated::healthweb::v1::*;
}

/// The generated `healthweb.v1` Statuses types under a stable path.
pub mod statuses {
    pub use crate::generated::healthweb::v1::{
        ServiceStatus, WatchAllRequest, WatchAllResponse, statuses_client, statuses_server,
    };
}

/// The encoded `FileDescriptorSet` of every proto here, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));
