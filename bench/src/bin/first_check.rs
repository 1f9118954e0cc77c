//! Start-up time: spawns a server, asks it `Check("")` over h2c in a tight loop
//! until one answers SERVING, and reports how long that took; then, after a
//! second of quiet, the server's idle RSS. Repeats `--runs` times.
//!
//! Usage: `first-check --url http://127.0.0.1:PORT [--runs 5] -- COMMAND ARGS...`
//! (the command must listen on that port; wrap it in `taskset` to pin it).
//! One JSON object goes to stdout: every sample, in ms and KiB.

use std::time::{Duration, Instant};

use healthweb_bench::{Flags, fail, rss_kib};
use healthweb_proto::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tokio::process::Command;
use tonic::transport::Endpoint;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let flags = Flags::from_env();
    let url = flags.get("url", "");
    let runs = flags.num("runs", 5);
    let limit = Duration::from_secs(flags.num("timeout-secs", 20));
    let Some((program, args)) = flags.rest.split_first() else {
        fail("usage: first-check --url URL [--runs N] -- COMMAND ARGS...")
    };
    let endpoint = Endpoint::from_shared(url.clone())
        .unwrap_or_else(|e| fail(&format!("bad --url: {e}")))
        .connect_timeout(Duration::from_millis(100));

    let (mut start_ms, mut idle_kib) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let mut child = Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| fail(&format!("cannot start {program}: {e}")));
        let pid = child.id().unwrap_or_default().to_string();
        loop {
            if started.elapsed() > limit {
                fail(&format!("{program} answered no Check within {limit:?}"));
            }
            if let Ok(channel) = endpoint.connect().await {
                let request = HealthCheckRequest {
                    service: String::new(),
                };
                if let Ok(answer) = HealthClient::new(channel).check(request).await
                    && answer.get_ref().status == ServingStatus::Serving as i32
                {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        start_ms.push(started.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_secs(1)).await;
        idle_kib.push(rss_kib(&pid));
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let idle: Vec<f64> = idle_kib.iter().map(|&k| k as f64).collect();
    println!(
        "{{\"start_ms\": [{}], \"idle_rss_kib\": [{}]}}",
        list(&start_ms),
        list(&idle)
    );
}
