//! Watch fan-out: opens N concurrent `Watch` streams on one service, many per
//! HTTP/2 connection, waits until each has its first message, then flips the
//! service's status and times how long each stream takes to hear of it.
//!
//! Usage:
//! `watch-fanout --url http://127.0.0.1:PORT --pid SERVER_PID --streams N
//!  [--per-conn 1000] [--service bench] [--admin 127.0.0.1:ADMIN_PORT | --signal yes]
//!  [--flips 1] [--timeout-secs 120] [--pause-before-flip SECS] [--hold-after-flip SECS]`
//!
//! The flip goes through healthweb's admin API (`--admin`), or, for the
//! tonic-default peer, a SIGUSR1 to `--pid` (`--signal`). `--flips N` flips N
//! times (NOT_SERVING, SERVING, ...), half a second apart, every stream hearing
//! each. One JSON object goes to stdout: server RSS idle, with all streams open
//! and after they all left (KiB), and the notify latencies (ms) from a flip to each
//! stream's message (min, p50, p99, max), with the CPU time server and client spent
//! meanwhile: each the median over the flips, and each flip's slowest watcher.
//! `--pause-before-flip` waits with every stream open, to attach a profiler, and
//! `--hold-after-flip` keeps them open after, so that the profile ends before the
//! streams do.
//!
//! The client is lean on purpose, so that the latency is the server's: raw `h2`,
//! one task per connection that drives all of its streams, on one thread. A tonic
//! client (a task and a buffered channel per stream) spent more CPU on the 100k
//! flip than either server did, and its own queueing was most of the p99.

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{StreamExt, stream::FuturesUnordered};
use h2::{
    RecvStream,
    client::{self, ResponseFuture},
};
use healthweb_bench::{Flags, admin_set, cpu_ms, fail, percentile_ms, rss_kib};
use healthweb_proto::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
};
use prost::Message;
use tokio::{
    net::TcpStream,
    sync::{mpsc, watch},
};

/// What a connection's task reports, once for all of its streams.
enum Event {
    /// This many streams had their first message, SERVING.
    Ready(usize),
    /// When each stream heard NOT_SERVING.
    Heard(Vec<Instant>),
    Failed(String),
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let flags = Flags::from_env();
    let url = flags.get("url", "http://127.0.0.1:8080");
    let pid = flags.get("pid", "");
    if pid.is_empty() {
        fail("--pid SERVER_PID is required");
    }
    let addr = url
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| fail(&format!("--url must be http://HOST:PORT, not {url:?}")));
    let streams = flags.num("streams", 1000) as usize;
    let per_conn = flags.num("per-conn", 1000).max(1) as usize;
    let service = flags.get("service", "bench");
    let admin = flags.get("admin", "");
    let by_signal = flags.get("signal", "no") != "no";
    let flips = flags.num("flips", 1).max(1) as usize;
    let timeout = Duration::from_secs(flags.num("timeout-secs", 120));
    let deadline = Instant::now() + timeout;

    settle().await;
    let idle = rss_kib(&pid);

    let started = Instant::now();
    let request = grpc_frame(&HealthCheckRequest {
        service: service.clone(),
    });
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (leave_tx, leave_rx) = watch::channel(false);
    let connections = streams.div_ceil(per_conn);
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let n = per_conn.min(streams - c * per_conn);
        let conn = Connection {
            addr: addr.clone(),
            flips,
            request: request.clone(),
            events: events_tx.clone(),
            leave: leave_rx.clone(),
        };
        tasks.push(tokio::spawn(conn.run(n)));
    }
    drop(events_tx);

    let mut next = async |what: &str, have: usize| match tokio::time::timeout_at(
        deadline.into(),
        events.recv(),
    )
    .await
    {
        Ok(Some(Event::Failed(e))) => fail(&e),
        Ok(Some(event)) => event,
        Ok(None) => fail("every connection ended early"),
        Err(_) => fail(&format!(
            "only {have} of {streams} streams {what} after {timeout:?}"
        )),
    };
    let mut ready = 0;
    while ready < streams {
        match next("had their first message", ready).await {
            Event::Ready(n) => ready += n,
            _ => fail("a stream heard a change before the flip"),
        }
    }
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    settle().await;
    let open = rss_kib(&pid);
    let client = rss_kib("self");

    let pause = flags.num("pause-before-flip", 0);
    if pause > 0 {
        eprintln!("flipping in {pause} s");
        tokio::time::sleep(Duration::from_secs(pause)).await;
    }
    let mut measured = Vec::with_capacity(flips);
    for flip in 0..flips {
        if flip > 0 {
            settle().await;
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
        } else if let Err(e) = admin_set(&admin, &service, expected(flip).as_str_name()).await {
            fail(&format!("admin API at {admin:?}: {e}"));
        }
        let mut latencies = Vec::with_capacity(streams);
        while latencies.len() < streams {
            match next("heard the change", latencies.len()).await {
                Event::Heard(at) => latencies.extend(at.into_iter().map(|t| t - flipped)),
                _ => fail("a connection reported ready twice"),
            }
        }
        latencies.sort();
        measured.push([
            percentile_ms(&latencies, 0.0),
            percentile_ms(&latencies, 50.0),
            percentile_ms(&latencies, 99.0),
            percentile_ms(&latencies, 100.0),
            cpu_ms(&pid) - server_cpu,
            cpu_ms("self") - client_cpu,
        ]);
    }
    // Each figure's median over the flips, taken on its own.
    let median = |i: usize| {
        let mut values: Vec<f64> = measured.iter().map(|m| m[i]).collect();
        values.sort_by(f64::total_cmp);
        values[(values.len() - 1) / 2]
    };
    let slowest: Vec<String> = measured.iter().map(|m| format!("{:.2}", m[3])).collect();

    let hold = flags.num("hold-after-flip", 0);
    if hold > 0 {
        // Keeps the teardown out of a profile of the flip.
        tokio::time::sleep(Duration::from_secs(hold)).await;
    }
    let _ = leave_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    // Give the server time to see the connections close and free what they held.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(&pid);

    let per_stream = (open.saturating_sub(idle) as f64 * 1024.0) / streams as f64;
    println!(
        "{{\"streams\": {streams}, \"connections\": {connections}, \"open_ms\": {open_ms:.1}, \
         \"rss_idle_kib\": {idle}, \"rss_open_kib\": {open}, \"rss_after_kib\": {after}, \
         \"bytes_per_stream\": {per_stream:.0}, \"client_rss_kib\": {client}, \
         \"flips\": {flips}, \"notify_min_ms\": {:.2}, \"notify_p50_ms\": {:.2}, \
         \"notify_p99_ms\": {:.2}, \"notify_max_ms\": {:.2}, \"notify_server_cpu_ms\": {:.0}, \
         \"notify_client_cpu_ms\": {:.0}, \"notify_max_each_ms\": [{}]}}",
        median(0),
        median(1),
        median(2),
        median(3),
        median(4),
        median(5),
        slowest.join(", "),
    );
}

/// What the `flip`th flip (from 0) sets: NOT_SERVING, then SERVING, and so on.
fn expected(flip: usize) -> ServingStatus {
    if flip.is_multiple_of(2) {
        ServingStatus::NotServing
    } else {
        ServingStatus::Serving
    }
}

/// Lets the server's allocator and the kernel's counters catch up.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// `message` as one length-prefixed gRPC frame.
fn grpc_frame(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + body.len());
    frame.push(0);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame.into()
}

/// One HTTP/2 connection and its streams, from open to leave.
struct Connection {
    addr: String,
    flips: usize,
    request: Bytes,
    events: mpsc::UnboundedSender<Event>,
    leave: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, streams: usize) {
        if let Err(e) = self.watch(streams).await {
            let _ = self.events.send(Event::Failed(e));
        }
    }

    async fn watch(&mut self, streams: usize) -> Result<(), String> {
        let tcp = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.addr))?;
        let _ = tcp.set_nodelay(true);
        // h2 closes a connection on which more than a budget of small DATA frames
        // waits unread; a flip sends one to each of this connection's streams.
        let (mut h2, driver) = client::Builder::new()
            .data_frame_budget(streams.max(100) * 2 * 256)
            .handshake(tcp)
            .await
            .map_err(|e| format!("HTTP/2 handshake with {}: {e}", self.addr))?;
        tokio::spawn(driver);

        let uri = format!("http://{}/grpc.health.v1.Health/Watch", self.addr);
        let mut opening = FuturesUnordered::new();
        for _ in 0..streams {
            // Waits while the server's SETTINGS allow no more concurrent streams.
            h2 = h2
                .ready()
                .await
                .map_err(|e| format!("opening a stream: {e}"))?;
            let request = http::Request::post(&uri)
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .expect("a valid request head");
            let (response, mut send) = h2
                .send_request(request, false)
                .map_err(|e| format!("opening a stream: {e}"))?;
            send.send_data(self.request.clone(), true)
                .map_err(|e| format!("sending the request: {e}"))?;
            opening.push(Watching::open(response));
        }
        let mut watching = Vec::with_capacity(streams);
        while let Some(stream) = opening.next().await {
            watching.push(stream?.expect(ServingStatus::Serving).await?.1);
        }
        let _ = self.events.send(Event::Ready(streams));

        for flip in 0..self.flips {
            let mut hearing: FuturesUnordered<_> = watching
                .into_iter()
                .map(|w| w.expect(expected(flip)))
                .collect();
            let mut heard = Vec::with_capacity(streams);
            watching = Vec::with_capacity(streams);
            while let Some(result) = hearing.next().await {
                let (at, stream) = result?;
                heard.push(at);
                watching.push(stream);
            }
            let _ = self.events.send(Event::Heard(heard));
        }
        let _ = self.leave.wait_for(|leave| *leave).await;
        Ok(())
    }
}

/// An open Watch stream and the bytes of a message not yet whole.
struct Watching {
    body: RecvStream,
    buffer: BytesMut,
}

impl Watching {
    async fn open(response: ResponseFuture) -> Result<Self, String> {
        let response = response.await.map_err(|e| format!("Watch refused: {e}"))?;
        let (head, body) = response.into_parts();
        if head.status != http::StatusCode::OK || head.headers.contains_key("grpc-status") {
            return Err(format!("Watch answered {} {:?}", head.status, head.headers));
        }
        Ok(Self {
            body,
            buffer: BytesMut::new(),
        })
    }

    /// Reads the next message, which must carry `want`; when it was whole.
    async fn expect(mut self, want: ServingStatus) -> Result<(Instant, Self), String> {
        loop {
            if let Some(status) = self.take_message()? {
                let at = Instant::now();
                return if status == want as i32 {
                    Ok((at, self))
                } else {
                    Err(format!("expected {want:?}, got status {status}"))
                };
            }
            match self.body.data().await {
                Some(Ok(chunk)) => {
                    let _ = self.body.flow_control().release_capacity(chunk.len());
                    self.buffer.extend_from_slice(&chunk);
                }
                Some(Err(e)) => return Err(format!("Watch stream failed: {e}")),
                None => {
                    let trailers = self.body.trailers().await.ok().flatten();
                    return Err(format!("Watch stream ended: {trailers:?}"));
                }
            }
        }
    }

    /// The status of the first whole message in the buffer, if there is one.
    fn take_message(&mut self) -> Result<Option<i32>, String> {
        if self.buffer.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]);
        if self.buffer.len() < 5 + len as usize {
            return Ok(None);
        }
        self.buffer.advance(5);
        let message = self.buffer.split_to(len as usize);
        HealthCheckResponse::decode(message.freeze())
            .map(|m| Some(m.status))
            .map_err(|e| format!("bad Watch message: {e}"))
    }
}
