//! Compiles `proto/` (`grpc.health.v1`, and healthweb's own `healthweb.v1`
//! History and Statuses) with protox, a pure-Rust protobuf compiler, so no system
//! `protoc` is needed, and keeps the encoded descriptor set for gRPC server
//! reflection.

use std::{env, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/grpc/health/v1/health.proto",
        "proto/healthweb/v1/history.proto",
        "proto/healthweb/v1/statuses.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out.join("descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // No transport: the generated client stays wasm-safe; callers bring a channel.
        .build_transport(false)
        // tonic's prost codec with small buffers (src/codec.rs).
        .codec_path("crate::codec::HealthCodec")
        .compile_fds(fds)?;
    Ok(())
}
