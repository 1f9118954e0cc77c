//! The upstream monitor against real upstreams on 127.0.0.1: healthweb servers,
//! grpcio, and misbehaving listeners (hanging, refusing, garbage, slow, no Watch);
//! and many upstreams on one address, sharing its connections.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::Stream;
use healthweb_proto::pb::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
    health_check_response::ServingStatus,
    health_server::{Health, HealthServer},
};
use healthweb_server::{
    HealthRegistry,
    monitor::{Mode, Monitor, Report},
    upstream::UpstreamConfig,
};
use tokio::{io::AsyncWriteExt, net::TcpListener};
use tonic::{Request, Response, Status};

use crate::{
    interop::Peer,
    util::{Binary, Http, TestServer, WebStream, client, frame, get_ok, req, status_in, within},
};

/// An upstream entry as a config file has it; probes every 100 ms with a 300 ms
/// timeout unless `extra` says otherwise.
fn upstream_toml(name: &str, target: &str, extra: &str) -> String {
    let mut text = format!("[[upstream]]\nname = \"{name}\"\ntarget = \"{target}\"\n{extra}\n");
    for (key, default) in [("interval", "\"100ms\""), ("timeout", "\"300ms\"")] {
        if !extra.contains(key) {
            text.push_str(&format!("{key} = {default}\n"));
        }
    }
    text
}

/// [`upstream_toml`]'s entry, read as healthweb reads its config file.
fn upstream(name: &str, target: &str, extra: &str) -> UpstreamConfig {
    let file: healthweb_server::config::ConfigFile =
        toml::from_str(&upstream_toml(name, target, extra)).unwrap();
    file.upstream.into_iter().next().unwrap()
}

/// Waits until `name` shows `want` in `registry`.
async fn until(registry: &HealthRegistry, name: &str, want: ServingStatus) {
    let mut watcher = registry.watch(name);
    within(watcher.receiver().wait_for(|s| *s == want))
        .await
        .unwrap();
}

fn report(monitor: &Monitor, name: &str) -> Report {
    monitor.reports().read().unwrap()[name].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_upstream_flip_is_taken_at_once_and_reaches_grpc_web_watchers() {
    let web = TestServer::start().await;
    let upstream_server = TestServer::start().await;
    upstream_server
        .registry
        .set("pay", ServingStatus::Serving)
        .unwrap();
    let mut monitor = Monitor::new(web.registry.clone());
    monitor.apply(&[upstream(
        "payments",
        &upstream_server.url(),
        "service = \"pay\"\nunhealthy_threshold = 5",
    )]);
    until(&web.registry, "payments", ServingStatus::Serving).await;
    assert_eq!(report(&monitor, "payments").mode, Mode::Watch);

    // A browser-side Watch on healthweb (gRPC-Web binary over HTTP/1.1).
    let url = format!("{}/grpc.health.v1.Health/Watch", web.url());
    let headers = [
        ("content-type", "application/grpc-web+proto"),
        ("grpc-timeout", "3S"),
    ];
    let mut browser = WebStream::open(Http::H1, &url, &headers, frame(&req("payments"))).await;
    let first = browser.message().await.expect("the current status");
    assert_eq!(status_in(&first), ServingStatus::Serving);
    upstream_server
        .registry
        .set("pay", ServingStatus::NotServing)
        .unwrap();
    // Taken at once: no five failures needed.
    until(&web.registry, "payments", ServingStatus::NotServing).await;
    assert_eq!(
        browser.finish().await.statuses(),
        [ServingStatus::NotServing]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polled_thresholds_count_consecutive_results() {
    let web = TestServer::start().await;
    let up = TestServer::start().await;
    let mut monitor = Monitor::new(web.registry.clone());
    let config =
        "watch = false\ninterval = \"250ms\"\nhealthy_threshold = 2\nunhealthy_threshold = 3";
    monitor.apply(&[upstream("u", &up.url(), config)]);
    until(&web.registry, "u", ServingStatus::Serving).await;
    assert_eq!(
        report(&monitor, "u").successes,
        2,
        "SERVING after 2 successes"
    );
    up.registry.set("", ServingStatus::NotServing).unwrap();
    until(&web.registry, "u", ServingStatus::NotServing).await;
    let seen = report(&monitor, "u");
    assert_eq!(
        (seen.failures, seen.mode),
        (3, Mode::Poll),
        "NOT_SERVING after 3 failures"
    );
    assert_eq!(seen.answer.as_deref(), Some("NOT_SERVING"));
    up.registry.set("", ServingStatus::Serving).unwrap();
    until(&web.registry, "u", ServingStatus::Serving).await;
    assert_eq!(report(&monitor, "u").successes, 2);
}

/// A listener that accepts and then does `behave` to each connection.
async fn misbehaving(behave: &'static [u8], close: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(behave).await;
            if !close {
                held.push(socket);
            }
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_refusing_garbage_and_slow_upstreams_go_not_serving_without_delaying_others() {
    let web = TestServer::start().await;
    let fine = TestServer::start().await;
    let refused = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", free.local_addr().unwrap())
    };
    let hanging = misbehaving(b"", false).await;
    let garbage = misbehaving(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nxyz", true).await;
    let slow = slow_server(Duration::from_secs(30)).await;
    let mut monitor = Monitor::new(web.registry.clone());
    let fast_fail = "unhealthy_threshold = 2\nwatch = false";
    monitor.apply(&[
        upstream("fine", &fine.url(), ""),
        upstream("refused", &refused, fast_fail),
        upstream("hanging", &hanging, fast_fail),
        upstream("garbage", &garbage, fast_fail),
        upstream(
            "garbage-web",
            &garbage,
            &format!("{fast_fail}\nprotocol = \"grpc-web\""),
        ),
        upstream("slow", &slow, fast_fail),
    ]);
    until(&web.registry, "fine", ServingStatus::Serving).await;
    for name in ["refused", "hanging", "garbage", "garbage-web", "slow"] {
        until(&web.registry, name, ServingStatus::NotServing).await;
        let seen = report(&monitor, name);
        assert!(seen.error.is_some(), "{name}: {seen:?}");
        assert!(
            seen.latency_ms.unwrap() < 10_000.0,
            "{name}: the 300 ms timeout held, not the 30 s answer: {seen:?}"
        );
    }
    let refused = report(&monitor, "refused").error.unwrap();
    assert!(refused.contains("Connection refused"), "{refused}");
    // Each cause once: tonic's status message is its transport error's own text.
    assert_eq!(refused.matches("tcp connect error").count(), 1, "{refused}");
    assert!(!refused.contains("metadata"), "{refused}");
    assert!(
        report(&monitor, "hanging")
            .error
            .unwrap()
            .contains("DEADLINE_EXCEEDED")
    );
    assert!(
        report(&monitor, "slow")
            .error
            .unwrap()
            .contains("DEADLINE_EXCEEDED")
    );

    // Meanwhile the fine one still follows its upstream at once.
    fine.registry.set("", ServingStatus::NotServing).unwrap();
    until(&web.registry, "fine", ServingStatus::NotServing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_watch_it_polls_check_and_http_upstreams_use_status_codes() {
    let web = TestServer::start().await;
    let no_watch = slow_server(Duration::ZERO).await;
    let plain = TestServer::start().await;
    plain.registry.set("db", ServingStatus::Serving).unwrap();
    let mut monitor = Monitor::new(web.registry.clone());
    monitor.apply(&[
        upstream("checked", &no_watch, ""),
        upstream(
            "http",
            &plain.url(),
            "protocol = \"http\"\nservice = \"/healthz?service=db\"\nunhealthy_threshold = 1",
        ),
    ]);
    until(&web.registry, "checked", ServingStatus::Serving).await;
    until(&web.registry, "http", ServingStatus::Serving).await;
    let checked = report(&monitor, "checked");
    assert_eq!(
        checked.mode,
        Mode::Poll,
        "UNIMPLEMENTED Watch falls back to Check: {checked:?}"
    );
    plain.registry.set("db", ServingStatus::NotServing).unwrap();
    until(&web.registry, "http", ServingStatus::NotServing).await;
    assert_eq!(report(&monitor, "http").answer.as_deref(), Some("HTTP 503"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpcio_upstream_is_watched() {
    let web = TestServer::start().await;
    let mut peer = Peer::start(&[]);
    let mut monitor = Monitor::new(web.registry.clone());
    monitor.apply(&[upstream(
        "py",
        &format!("http://127.0.0.1:{}", peer.port),
        "service = \"svc\"",
    )]);
    peer.set("svc", "SERVING");
    until(&web.registry, "py", ServingStatus::Serving).await;
    assert_eq!(report(&monitor, "py").mode, Mode::Watch);
    peer.set("svc", "NOT_SERVING");
    until(&web.registry, "py", ServingStatus::NotServing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_changes_and_removes_and_200_upstreams_leave_nothing_behind() {
    let web = TestServer::start().await;
    let upstreams: Vec<TestServer> =
        futures_util::future::join_all((0..4).map(|_| TestServer::start())).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let idle_tasks = metrics.num_alive_tasks();
    let mut monitor = Monitor::new(web.registry.clone());
    let configs: Vec<UpstreamConfig> = (0..200)
        .map(|i| {
            upstream(
                &format!("u{i:03}"),
                &upstreams[i % 4].url(),
                "interval = \"200ms\"",
            )
        })
        .collect();
    monitor.apply(&configs);
    for i in 0..200 {
        until(&web.registry, &format!("u{i:03}"), ServingStatus::Serving).await;
    }
    let mut client = web.client().await;
    let mut watcher = client.watch(req("u000")).await.unwrap().into_inner();
    assert_eq!(
        watcher.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );
    let busy_tasks = metrics.num_alive_tasks();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Steady: no task per probe piles up (memory: `polled_upstreams_hold_memory_steady`).
    assert!(
        metrics.num_alive_tasks() <= busy_tasks + 4,
        "{} > {busy_tasks}",
        metrics.num_alive_tasks()
    );

    // Change one, keep one, drop the rest.
    let changed = upstream("u001", &upstreams[2].url(), "interval = \"150ms\"");
    monitor.apply(&[configs[0].clone(), changed]);
    assert_eq!(monitor.len(), 2);
    let err = client.check(req("u150")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let list = client
        .list(HealthListRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.statuses.len(), 3, "\"\", u000, u001");
    upstreams[2]
        .registry
        .set("", ServingStatus::NotServing)
        .unwrap();
    until(&web.registry, "u001", ServingStatus::NotServing).await;

    // Removed: its watcher sees SERVICE_UNKNOWN and the stream stays open.
    monitor.apply(&[]);
    let next = within(watcher.message()).await.unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::ServiceUnknown as i32);
    drop((watcher, client));
    within(async {
        while metrics.num_alive_tasks() > idle_tasks + 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(monitor.reports().read().unwrap().is_empty());
}

/// 200 upstreams polled every 200 ms by the real binary: its memory does not creep.
/// Measured in a process of its own, where nothing another test does is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polled_upstreams_hold_memory_steady() {
    let upstreams: Vec<TestServer> =
        futures_util::future::join_all((0..4).map(|_| TestServer::start())).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("healthweb.toml");
    let config: String = (0..200)
        .map(|i| {
            upstream_toml(
                &format!("u{i:03}"),
                &upstreams[i % 4].url(),
                "interval = \"200ms\"\ntimeout = \"1s\"",
            )
        })
        .collect();
    std::fs::write(&path, config).unwrap();
    let server = Binary::serve(&["--config", path.to_str().unwrap(), "--list-limit", "300"]);
    let mut health = client(&server.url()).await;
    within(async {
        loop {
            let list = health
                .list(HealthListRequest {})
                .await
                .unwrap()
                .into_inner();
            let serving = list
                .statuses
                .iter()
                .filter(|(name, s)| {
                    name.starts_with('u') && s.status == ServingStatus::Serving as i32
                })
                .count();
            if serving == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let before = server.rss_kib();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kib();
    assert!(
        after < before + 8 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

/// A Health server whose Check answers after `delay` and which has no Watch.
async fn slow_server(delay: Duration) -> String {
    struct Slow(Duration);
    #[tonic::async_trait]
    impl Health for Slow {
        async fn check(
            &self,
            _: Request<HealthCheckRequest>,
        ) -> Result<Response<HealthCheckResponse>, Status> {
            tokio::time::sleep(self.0).await;
            Ok(Response::new(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            }))
        }
        type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;
        async fn watch(
            &self,
            _: Request<HealthCheckRequest>,
        ) -> Result<Response<Self::WatchStream>, Status> {
            Err(Status::unimplemented("no Watch here"))
        }
        async fn list(
            &self,
            _: Request<HealthListRequest>,
        ) -> Result<Response<HealthListResponse>, Status> {
            Err(Status::unimplemented("no List here"))
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(HealthServer::new(Slow(delay)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

/// A TCP relay to `target` that counts the connections made through it.
async fn counting_relay(target: std::net::SocketAddr) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_on_one_address_share_its_connections_with_a_watch_each() {
    const UPSTREAMS: usize = 120;
    let web = TestServer::start().await;
    let upstream_server =
        TestServer::serving((0..UPSTREAMS).map(|i| (format!("s{i}"), ServingStatus::Serving)))
            .await;
    let (target, accepted) = counting_relay(upstream_server.addr).await;
    // 50 a connection: 120 upstreams need 3.
    let mut monitor = Monitor::new(web.registry.clone()).upstreams_per_connection(50);
    let configs: Vec<_> = (0..UPSTREAMS)
        .map(|i| {
            upstream(
                &format!("u{i}"),
                &target,
                &format!("service = \"s{i}\"\ntimeout = \"10s\""),
            )
        })
        .collect();
    monitor.apply(&configs);
    for i in 0..UPSTREAMS {
        until(&web.registry, &format!("u{i}"), ServingStatus::Serving).await;
    }
    // Every upstream follows its own service by Watch...
    within(async {
        while (0..UPSTREAMS).any(|i| upstream_server.registry.watcher_count(&format!("s{i}")) != 1)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!((0..UPSTREAMS).all(|i| report(&monitor, &format!("u{i}")).mode == Mode::Watch));
    // ...over 3 connections, not 120.
    assert_eq!(monitor.connections().await, 3);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "connections the upstream accepted"
    );

    // A flip upstream reaches healthweb's registry over the shared connection.
    upstream_server
        .registry
        .set("s42", ServingStatus::NotServing)
        .unwrap();
    until(&web.registry, "u42", ServingStatus::NotServing).await;

    // Removing the upstreams closes the connections they shared.
    monitor.apply(&[]);
    within(async {
        while monitor.connections().await != 0
            || (0..UPSTREAMS).any(|i| upstream_server.registry.watcher_count(&format!("s{i}")) != 0)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_json_answers_for_every_upstream_or_those_named() {
    let upstream = Binary::serve(&["--service", "pay=SERVING", "--service", "db=NOT_SERVING"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("healthweb.toml");
    let entry = |name: &str, service: &str| {
        format!(
            "[[upstream]]\nname = \"{name}\"\ntarget = \"{}\"\nservice = \"{service}\"\ninterval = \"200ms\"\n",
            upstream.url()
        )
    };
    std::fs::write(&path, entry("payments", "pay") + &entry("db main", "db")).unwrap();
    let server = Binary::serve(&["--config", path.to_str().unwrap()]);
    let names = async |query: &str| -> Vec<String> {
        let body = get_ok(&format!("{}/upstreams{query}", server.url())).await;
        let reports: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&body).unwrap();
        reports.keys().cloned().collect()
    };
    within(async {
        while names("").await.len() < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(names("").await, ["db main", "payments"]);
    // Those named, by `service` (repeated, percent-encoded); other keys and
    // names that are not upstreams add nothing.
    assert_eq!(
        names("?service=db%20main&service=nowhere&other=payments").await,
        ["db main"]
    );
    assert_eq!(
        names("?service=payments&service=db%20main").await,
        ["db main", "payments"]
    );
    assert!(names("?service=nowhere").await.is_empty());
}
