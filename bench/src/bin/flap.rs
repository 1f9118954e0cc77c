//! A flapping service: flips one service's status through healthweb's admin API
//! as fast as `--tasks` connections can, for `--seconds`, then asks History how
//! many of the changes it recorded, and in how many rows.
//!
//! Usage: `flap --url http://127.0.0.1:PORT --admin 127.0.0.1:ADMIN_PORT
//!  [--service flap] [--seconds 5] [--tasks 8] [--history FILE]`
//!
//! One JSON object goes to stdout: flips made (admin calls), the changes they made
//! (from `/metrics`), the changes History accounts for (the sum of its rows'
//! counts; all of them, if nothing was lost), rows written, each per second, and
//! the history file's size (with its log), when `--history` names it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use healthweb_bench::{Flags, admin_set, fail, http_get};
use healthweb_proto::history::{TransitionsRequest, history_client::HistoryClient};
use tonic::transport::Endpoint;

#[tokio::main]
async fn main() {
    let flags = Flags::from_env();
    let url = flags.get("url", "http://127.0.0.1:8080");
    let admin = flags.get("admin", "");
    if admin.is_empty() {
        fail("--admin 127.0.0.1:ADMIN_PORT is required");
    }
    let service = flags.get("service", "flap");
    let seconds = flags.num("seconds", 5);
    let tasks = flags.num("tasks", 8);
    let file = flags.get("history", "");

    let flips = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let (admin, service, flips) = (admin.clone(), service.clone(), flips.clone());
            tokio::spawn(async move {
                let mut serving = task % 2 == 0;
                while Instant::now() < until {
                    let status = if serving { "SERVING" } else { "NOT_SERVING" };
                    if admin_set(&admin, &service, status).await.is_ok() {
                        flips.fetch_add(1, Ordering::Relaxed);
                    }
                    serving = !serving;
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let flips = flips.load(Ordering::Relaxed);

    // History writes once a second: wait for the last write, then count.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let channel = Endpoint::from_shared(url.clone())
        .unwrap_or_else(|e| fail(&format!("bad --url: {e}")))
        .connect()
        .await
        .unwrap_or_else(|e| fail(&format!("cannot connect to {url}: {e}")));
    let mut history = HistoryClient::new(channel);
    let (mut rows, mut changes, mut before) = (0u64, 0u64, 0i64);
    loop {
        let page = history
            .transitions(TransitionsRequest {
                service: service.clone(),
                until_unix_ms: before,
                limit: 1000,
                ..TransitionsRequest::default()
            })
            .await
            .unwrap_or_else(|e| fail(&format!("History/Transitions: {e}")))
            .into_inner();
        rows += page.transitions.len() as u64;
        changes += page
            .transitions
            .iter()
            .map(|t| u64::from(t.count))
            .sum::<u64>();
        match page.transitions.last() {
            Some(oldest) if page.truncated => before = oldest.at_unix_ms,
            _ => break,
        }
    }
    // The metrics count every change as the registry makes it: what History must match.
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let metrics = http_get(host, "/metrics")
        .await
        .unwrap_or_else(|e| fail(&format!("/metrics: {e}")));
    let counted: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "healthweb_status_transitions_total{{service=\"{service}\"}} "
            ))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let size = |path: String| std::fs::metadata(path).map_or(0, |m| m.len());
    let bytes = if file.is_empty() {
        0
    } else {
        size(file.clone()) + size(format!("{file}-wal"))
    };
    println!(
        "{{\"seconds\": {elapsed:.2}, \"flips\": {flips}, \"flips_per_s\": {:.0}, \
         \"changes\": {counted}, \"changes_recorded\": {changes}, \"recorded_per_s\": {:.0}, \
         \"rows\": {rows}, \"rows_per_s\": {:.1}, \"file_bytes\": {bytes}}}",
        flips as f64 / elapsed,
        changes as f64 / elapsed,
        rows as f64 / elapsed,
    );
}
