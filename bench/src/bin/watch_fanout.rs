//! Watch fan-out: opens N concurrent `Watch` streams on one service, many per
//! HTTP/2 connection, waits until each has its first message, then flips the
//! service's status and times how long each stream takes to hear of it.
//!
//! Usage:
//! `watch-fanout --url http://127.0.0.1:PORT --pid SERVER_PID --streams N
//!  [--per-conn 1000] [--service bench] [--admin 127.0.0.1:ADMIN_PORT | --signal]
//!  [--timeout-secs 120]`
//!
//! The flip goes through healthweb's admin API (`--admin`), or, for the
//! tonic-default peer, a SIGUSR1 to `--pid` (`--signal`). One JSON object goes to
//! stdout: server RSS idle, with all streams open and after they all left (KiB),
//! and the notify latencies (ms) from the flip to each stream's message, with the
//! CPU time server and client spent meanwhile. `--pause-before-flip SECS` waits
//! with every stream open, to attach a profiler.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use healthweb_bench::{Flags, admin_set, cpu_ms, fail, percentile_ms, rss_kib};
use healthweb_proto::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tokio::sync::{Notify, mpsc, watch};
use tonic::transport::{Channel, Endpoint};

#[tokio::main]
async fn main() {
    let flags = Flags::from_env();
    let url = flags.get("url", "http://127.0.0.1:8080");
    let pid = flags.get("pid", "");
    if pid.is_empty() {
        fail("--pid SERVER_PID is required");
    }
    let streams = flags.num("streams", 1000) as usize;
    let per_conn = flags.num("per-conn", 1000).max(1) as usize;
    let service = flags.get("service", "bench");
    let admin = flags.get("admin", "");
    let by_signal = flags.get("signal", "no") != "no";
    let timeout = Duration::from_secs(flags.num("timeout-secs", 120));
    let deadline = Instant::now() + timeout;

    settle().await;
    let idle = rss_kib(&pid);

    let started = Instant::now();
    let mut channels = Vec::new();
    for _ in 0..streams.div_ceil(per_conn) {
        let channel = Endpoint::from_shared(url.clone())
            .unwrap_or_else(|e| fail(&format!("bad --url: {e}")))
            .buffer_size(per_conn)
            .connect()
            .await
            .unwrap_or_else(|e| fail(&format!("cannot connect to {url}: {e}")));
        channels.push(channel);
    }

    let ready = Arc::new(AtomicUsize::new(0));
    let all_ready = Arc::new(Notify::new());
    let (leave_tx, leave_rx) = watch::channel(false);
    let (heard_tx, mut heard_rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(streams);
    for i in 0..streams {
        let watcher = Watcher {
            channel: channels[i / per_conn].clone(),
            service: service.clone(),
            ready: ready.clone(),
            all_ready: all_ready.clone(),
            total: streams,
            heard: heard_tx.clone(),
            leave: leave_rx.clone(),
        };
        tasks.push(tokio::spawn(watcher.run()));
    }
    drop(heard_tx);

    let wait = all_ready.notified();
    if ready.load(Ordering::SeqCst) < streams
        && tokio::time::timeout_at(deadline.into(), wait)
            .await
            .is_err()
    {
        fail(&format!(
            "only {} of {streams} streams had their first message after {timeout:?}",
            ready.load(Ordering::SeqCst)
        ));
    }
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    settle().await;
    let open = rss_kib(&pid);
    let client = rss_kib("self");

    let pause = flags.num("pause-before-flip", 0);
    if pause > 0 {
        // Time to attach a profiler to the server, with every stream open.
        eprintln!("flipping in {pause} s");
        tokio::time::sleep(Duration::from_secs(pause)).await;
    }
    let (server_cpu, client_cpu) = (cpu_ms(&pid), cpu_ms("self"));
    let flipped = Instant::now();
    if by_signal {
        let killed = std::process::Command::new("kill")
            .args(["-USR1", &pid])
            .status();
        if !killed.is_ok_and(|s| s.success()) {
            fail("cannot send SIGUSR1 to the server");
        }
    } else if let Err(e) = admin_set(&admin, &service, "NOT_SERVING").await {
        fail(&format!("admin API at {admin:?}: {e}"));
    }
    let mut latencies = Vec::with_capacity(streams);
    while latencies.len() < streams {
        match tokio::time::timeout_at(deadline.into(), heard_rx.recv()).await {
            Ok(Some(Ok(at))) => latencies.push(at - flipped),
            Ok(Some(Err(e))) => fail(&e),
            Ok(None) => break,
            Err(_) => fail(&format!(
                "only {} of {streams} streams heard the change after {timeout:?}",
                latencies.len()
            )),
        }
    }
    let (server_cpu, client_cpu) = (cpu_ms(&pid) - server_cpu, cpu_ms("self") - client_cpu);
    latencies.sort();

    let _ = leave_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    drop(channels);
    // Give the server time to see the connections close and free what they held.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(&pid);

    let per_stream = (open.saturating_sub(idle) as f64 * 1024.0) / streams as f64;
    println!(
        "{{\"streams\": {streams}, \"connections\": {}, \"open_ms\": {open_ms:.1}, \
         \"rss_idle_kib\": {idle}, \"rss_open_kib\": {open}, \"rss_after_kib\": {after}, \
         \"bytes_per_stream\": {per_stream:.0}, \"client_rss_kib\": {client}, \
         \"notify_p50_ms\": {:.2}, \"notify_p99_ms\": {:.2}, \"notify_max_ms\": {:.2}, \
         \"notify_server_cpu_ms\": {server_cpu:.0}, \"notify_client_cpu_ms\": {client_cpu:.0}}}",
        streams.div_ceil(per_conn),
        percentile_ms(&latencies, 50.0),
        percentile_ms(&latencies, 99.0),
        percentile_ms(&latencies, 100.0),
    );
}

/// Lets the server's allocator and the kernel's counters catch up.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// One stream's life: open, first message, the change, then hold until told to leave.
struct Watcher {
    channel: Channel,
    service: String,
    ready: Arc<AtomicUsize>,
    all_ready: Arc<Notify>,
    total: usize,
    heard: mpsc::UnboundedSender<Result<Instant, String>>,
    leave: watch::Receiver<bool>,
}

impl Watcher {
    async fn run(mut self) {
        let mut client = HealthClient::new(self.channel);
        let request = HealthCheckRequest {
            service: self.service,
        };
        let mut stream = match client.watch(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                let _ = self.heard.send(Err(format!("Watch failed: {status}")));
                return;
            }
        };
        match stream.message().await {
            Ok(Some(m)) if m.status == ServingStatus::Serving as i32 => {}
            other => {
                let _ = self
                    .heard
                    .send(Err(format!("first message not SERVING: {other:?}")));
                return;
            }
        }
        if self.ready.fetch_add(1, Ordering::SeqCst) + 1 == self.total {
            self.all_ready.notify_one();
        }
        let heard = match stream.message().await {
            Ok(Some(m)) if m.status == ServingStatus::NotServing as i32 => Ok(Instant::now()),
            other => Err(format!("second message not NOT_SERVING: {other:?}")),
        };
        let _ = self.heard.send(heard);
        let _ = self.leave.wait_for(|leave| *leave).await;
        drop(stream);
    }
}
