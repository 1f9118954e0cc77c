//! Start-up time: spawns a server, reads its address from its `listening on URL`
//! line (whole lines only), asks it `Check("")` over h2c in a tight loop until one
//! answers SERVING, and reports how long that took; then, after a second of
//! quiet, the server's idle memory: its RSS, and what of it is the process's own
//! (`Private_Dirty` and `Anonymous` from `/proc/PID/smaps_rollup`; the rest of RSS is
//! file pages, the binary's among them, that every instance shares). Repeats `--runs` times.
//!
//! Usage: `first-check [--runs 5] -- COMMAND ARGS...` (the command listens on
//! port 0 and prints its address to stderr; wrap it in `taskset` to pin it).
//! One JSON object goes to stdout: every sample, in ms and KiB.

use std::time::{Duration, Instant};

use healthweb_bench::{Flags, fail, rss_kib, smaps_kib};
use healthweb_proto::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{ChildStderr, Command},
};
use tonic::transport::Endpoint;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let flags = Flags::from_env();
    let runs = flags.num("runs", 5);
    let limit = Duration::from_secs(flags.num("timeout-secs", 20));
    let Some((program, args)) = flags.rest.split_first() else {
        fail("usage: first-check [--runs N] -- COMMAND ARGS...")
    };

    let (mut start_ms, mut idle_kib) = (Vec::new(), Vec::new());
    let (mut dirty_kib, mut anon_kib) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let mut child = Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| fail(&format!("cannot start {program}: {e}")));
        let pid = child.id().unwrap_or_default().to_string();
        let stderr = child.stderr.take().expect("piped");
        let url = tokio::time::timeout(limit, address(stderr))
            .await
            .unwrap_or_else(|_| fail(&format!("{program} printed no address within {limit:?}")));
        let endpoint = Endpoint::from_shared(url.clone())
            .unwrap_or_else(|e| fail(&format!("bad address {url:?}: {e}")))
            .connect_timeout(Duration::from_millis(100));
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
        idle_kib.push(rss_kib(&pid) as f64);
        dirty_kib.push(smaps_kib(&pid, "Private_Dirty") as f64);
        anon_kib.push(smaps_kib(&pid, "Anonymous") as f64);
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "{{\"start_ms\": [{}], \"idle_rss_kib\": [{}], \"private_dirty_kib\": [{}], \"anonymous_kib\": [{}]}}",
        list(&start_ms),
        list(&idle_kib),
        list(&dirty_kib),
        list(&anon_kib)
    );
}

/// The URL of the first `listening on URL` line; the rest of stderr is drained
/// in the background so the server never blocks on a full pipe.
async fn address(stderr: ChildStderr) -> String {
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(url) = line.strip_prefix("listening on ") {
            let url = url.to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return url;
        }
        seen.push(line);
    }
    fail(&format!(
        "the server exited without an address; stderr:\n{}",
        seen.join("\n")
    ))
}
