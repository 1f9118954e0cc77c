//! The peer a Rust user would write without healthweb: `tonic-health` behind
//! `tonic-web`, as the tonic-web docs show it.
//!
//! Usage: `tonic-default [ADDR] [--cors]` (default `127.0.0.1:0`). It prints
//! `listening on http://ADDR` to stderr once bound, serves `""` and `bench` as
//! SERVING, and flips `bench` to NOT_SERVING on SIGUSR1 (and back on the next), so
//! the Watch fan-out bench can drive it as it drives healthweb's admin API.
//!
//! `tonic-default [ADDR] --cors` adds healthweb's CORS layer (tower-http, same
//! settings as healthweb with no `--cors-origin`): not part of the default, only
//! there to measure what that layer costs (BENCHMARKS.md, "Where the time goes").

use std::net::SocketAddr;

use tokio::signal::unix::{SignalKind, signal};
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::ServingStatus;
use tonic_web::GrpcWebLayer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let with_cors = args.iter().any(|a| a == "--cors");
    let addr: SocketAddr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or("127.0.0.1:0", String::as_str)
        .parse()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    reporter
        .set_service_status("bench", ServingStatus::Serving)
        .await;

    let mut flips = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        let mut serving = true;
        while flips.recv().await.is_some() {
            serving = !serving;
            let status = if serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter.set_service_status("bench", status).await;
        }
    });

    let incoming = TcpIncoming::bind(addr)?.with_nodelay(Some(true));
    eprintln!("listening on http://{}", incoming.local_addr()?);
    Server::builder()
        .accept_http1(true)
        .layer(tower::util::option_layer(with_cors.then(healthweb_cors)))
        .layer(GrpcWebLayer::new())
        .add_service(health)
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

/// The CORS layer healthweb puts in front of everything (server/src/routes.rs, `cors`)
/// when no `--cors-origin` is given.
fn healthweb_cors() -> tower_http::cors::CorsLayer {
    use tonic::codegen::http::{HeaderName, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    CorsLayer::new()
        .allow_origin(AllowOrigin::list([]))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-grpc-web"),
            HeaderName::from_static("x-user-agent"),
            HeaderName::from_static("grpc-timeout"),
        ])
        .expose_headers([
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
            HeaderName::from_static("grpc-status-details-bin"),
        ])
        .max_age(std::time::Duration::from_secs(3600))
}
