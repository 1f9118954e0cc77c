//! Several `healthweb serve` processes on one PostgreSQL (a throwaway cluster,
//! see `pg`): they serve the same statuses and history, split the upstreams
//! between them (each probed by exactly one), take over from one killed with
//! `kill -9` or cut off from the database, get the leases back at once from one
//! that stops cleanly, lose nothing while the database is down for ten seconds,
//! and refuse a bad URL or password before they listen.
//!
//! The upstreams are one HTTP server here, answering `GET /u/N` with 200 or 503;
//! the monitor names its replica in its User-Agent, so every probe is known by
//! who made it.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    routing::get,
};
use futures_util::StreamExt;
use healthweb_proto::{
    history::{Cause, Transition, TransitionsRequest, history_client::HistoryClient},
    pb::health_check_response::ServingStatus,
};
use nix::sys::signal::Signal;
use tokio::net::{TcpListener, TcpStream};

use crate::{
    pg::Postgres,
    util::{Binary, LIMIT, client, drain, get_ok, instance, req, run_cli, run_cli_env, within},
};

const SERVING: i32 = ServingStatus::Serving as i32;
const NOT: i32 = ServingStatus::NotServing as i32;

/// A probe an upstream received: which upstream, from which replica, when.
#[derive(Debug, Clone)]
struct Probe {
    upstream: usize,
    replica: String,
    at: Instant,
}

/// N upstreams behind one HTTP server: up (200) or down (503), each probe noted.
struct Upstreams {
    addr: SocketAddr,
    up: Arc<Vec<AtomicBool>>,
    probes: Arc<Mutex<Vec<Probe>>>,
}

type Shared = (Arc<Vec<AtomicBool>>, Arc<Mutex<Vec<Probe>>>);

async fn answer(
    State((up, probes)): State<Shared>,
    UrlPath(upstream): UrlPath<usize>,
    headers: HeaderMap,
) -> StatusCode {
    let agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // "healthweb-monitor/0.1.0 (replica r1)"
    let replica = agent
        .split_once("(replica ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(agent)
        .to_owned();
    probes.lock().unwrap().push(Probe {
        upstream,
        replica,
        at: Instant::now(),
    });
    if up[upstream].load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

impl Upstreams {
    async fn start(n: usize) -> Self {
        let up: Arc<Vec<AtomicBool>> = Arc::new((0..n).map(|_| AtomicBool::new(true)).collect());
        let probes = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/u/{n}", get(answer))
            .with_state((up.clone(), probes.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, up, probes }
    }

    fn set_all(&self, up: bool) {
        for upstream in self.up.iter() {
            upstream.store(up, Ordering::SeqCst);
        }
    }

    fn probes_since(&self, since: Instant) -> Vec<Probe> {
        let mut probes: Vec<Probe> = self
            .probes
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.at >= since)
            .cloned()
            .collect();
        probes.sort_by_key(|p| p.at);
        probes
    }

    /// A config file naming every upstream, polled every 100 ms, one result
    /// enough either way.
    fn config(&self, dir: &Path) -> PathBuf {
        let mut text = String::new();
        for i in 0..self.up.len() {
            text.push_str(&format!(
                "[[upstream]]\nname = \"u{i}\"\ntarget = \"http://{}\"\nprotocol = \"http\"\n\
                 service = \"/u/{i}\"\ninterval = \"100ms\"\ntimeout = \"2s\"\n\
                 healthy_threshold = 1\nunhealthy_threshold = 1\n\n",
                self.addr
            ));
        }
        let path = dir.join("healthweb.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// A throwaway PostgreSQL, `n` upstreams, and a config file naming them.
async fn setup(n: usize) -> (Postgres, Upstreams, String) {
    let pg = Postgres::start();
    let upstreams = Upstreams::start(n).await;
    let config = upstreams.config(pg.dir()).to_str().unwrap().to_owned();
    (pg, upstreams, config)
}

/// Who probed `upstream`, run by run, in time order.
fn runs(probes: &[Probe], upstream: usize) -> Vec<String> {
    let mut runs: Vec<String> = Vec::new();
    for probe in probes.iter().filter(|p| p.upstream == upstream) {
        if runs.last() != Some(&probe.replica) {
            runs.push(probe.replica.clone());
        }
    }
    runs
}

/// A replica on `pg`, named `name`, with a 3 s lease period unless `extra`
/// gives one.
fn replica(pg: &Postgres, name: &str, extra: &[&str]) -> Binary {
    let url = pg.url();
    let lease: &[&str] = if extra.contains(&"--lease-period") {
        &[]
    } else {
        &["--lease-period", "3s"]
    };
    let args = [&["--history", &url, "--replica-id", name][..], lease, extra].concat();
    Binary::serve(&args)
}

/// `service`'s status on the server at `url`, if it answers.
async fn status(url: &str, service: &str) -> Option<i32> {
    let mut health = client(url).await;
    let reply = health.check(req(service)).await.ok()?;
    Some(reply.into_inner().status)
}

/// The upstreams a replica probes, as it says.
async fn probing(url: &str) -> BTreeSet<String> {
    instance(url).await["fleet"]["probing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Waits until each replica at `urls` probes `each` upstreams, none held by
/// two; returns what each probes.
async fn settled(urls: &[String], each: usize, limit: Duration) -> Vec<BTreeSet<String>> {
    let start = Instant::now();
    loop {
        let mut shares = Vec::new();
        for url in urls {
            shares.push(probing(url).await);
        }
        let all: BTreeSet<&String> = shares.iter().flatten().collect();
        if shares.iter().all(|s| s.len() == each) && all.len() == each * urls.len() {
            return shares;
        }
        assert!(
            start.elapsed() < limit,
            "not {each} upstreams each within {limit:?}: {shares:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `ready` holds, checking every 50 ms, at most `limit`.
async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> F,
) {
    let start = Instant::now();
    while !ready().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What each Watch stream saw: the statuses it received, in order.
type Seen = Arc<Mutex<Vec<i32>>>;

/// Opens a Watch on `url` for each of `services`; each notes what it receives.
async fn watch_all(url: &str, services: &[String]) -> Vec<Seen> {
    let mut health = client(url).await;
    let mut seen = Vec::new();
    for service in services {
        let mut stream = health.watch(req(service)).await.unwrap().into_inner();
        let statuses: Seen = Arc::default();
        let noted = statuses.clone();
        tokio::spawn(async move {
            while let Some(Ok(reply)) = stream.next().await {
                noted.lock().unwrap().push(reply.status);
            }
        });
        seen.push(statuses);
    }
    seen
}

fn last(seen: &Seen) -> Option<i32> {
    seen.lock().unwrap().last().copied()
}

async fn history(url: &str) -> HistoryClient<tonic::transport::Channel> {
    HistoryClient::new(
        tonic::transport::Channel::from_shared(url.to_owned())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
}

/// `service`'s transitions, oldest first; none while the replica at `url`
/// knows nothing of it yet (NOT_FOUND).
async fn transitions(url: &str, service: &str) -> Vec<Transition> {
    let asked = history(url)
        .await
        .transitions(TransitionsRequest {
            service: service.into(),
            limit: 1000,
            ..TransitionsRequest::default()
        })
        .await;
    let mut got = match asked {
        Ok(reply) => reply.into_inner().transitions,
        Err(status) if status.code() == tonic::Code::NotFound => Vec::new(),
        Err(status) => panic!("History/Transitions {service:?} at {url}: {status}"),
    };
    got.reverse();
    got
}

fn now_ms() -> i64 {
    healthweb_server::history::now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_thirty_flipping_upstreams_and_survive_a_kill_9() {
    let (pg, upstreams, config) = setup(30).await;
    let config = config.as_str();
    let names = ["r1", "r2", "r3"];
    let mut replicas: Vec<Binary> = names
        .iter()
        .map(|name| replica(&pg, name, &["--config", config, "--lease-period", "5s"]))
        .collect();
    let urls: Vec<String> = replicas.iter().map(Binary::url).collect();
    let services: Vec<String> = (0..30).map(|i| format!("u{i}")).collect();

    // An even share each: ten upstreams, none held twice.
    let shares = settled(&urls, 10, LIMIT * 2).await;

    // A Watch on every replica for every upstream, all SERVING to begin with.
    let mut watches = Vec::new();
    for url in &urls {
        watches.push(watch_all(url, &services).await);
    }
    until("every Watch sees SERVING", LIMIT, || {
        let ok = watches.iter().flatten().all(|w| last(w) == Some(SERVING));
        async move { ok }
    })
    .await;
    for seen in watches.iter().flatten() {
        *seen.lock().unwrap() = vec![SERVING];
    }
    let (t0, t0_ms) = (Instant::now(), now_ms());

    // Four flips of all thirty, each seen by every replica's Watch.
    let mut expected = vec![SERVING];
    let flip = |expected: &mut Vec<i32>| {
        let up = expected.len().is_multiple_of(2);
        upstreams.set_all(up);
        expected.push(if up { SERVING } else { NOT });
    };
    let seen_by = |replicas: std::ops::Range<usize>, expected: Vec<i32>| {
        let watches = &watches;
        async move {
            until("every Watch sees the flip", LIMIT, || {
                let ok = watches[replicas.clone()]
                    .iter()
                    .flatten()
                    .all(|w| *w.lock().unwrap() == expected);
                async move { ok }
            })
            .await;
        }
    };
    for _ in 0..4 {
        flip(&mut expected);
        seen_by(0..3, expected.clone()).await;
    }

    // kill -9 of r3 in the middle of a flip: its upstreams are taken over.
    let victim = replicas.pop().unwrap();
    flip(&mut expected);
    let mut victim = victim;
    victim.signal(Signal::SIGKILL);
    victim.wait(LIMIT).expect("killed");
    let killed = Instant::now();
    seen_by(0..2, expected.clone()).await;
    for _ in 0..3 {
        flip(&mut expected);
        seen_by(0..2, expected.clone()).await;
    }
    settled(&urls[..2], 15, LIMIT).await;

    // Each upstream probed by exactly one replica at a time: one run of probes
    // from one replica, then (at the kill, or as the shares settle) another;
    // two probing at once would interleave, run after run.
    let probes = upstreams.probes_since(t0);
    for upstream in 0..30 {
        let runs = runs(&probes, upstream);
        assert!(
            (1..=3).contains(&runs.len()),
            "u{upstream} was probed by {runs:?}"
        );
    }
    assert!(
        probes.iter().all(|p| p.replica != "r3" || p.at <= killed),
        "r3 probed after it was killed"
    );
    for name in &shares[2] {
        let upstream: usize = name[1..].parse().unwrap();
        assert!(
            probes
                .iter()
                .any(|p| p.upstream == upstream && p.at > killed && p.replica != "r3"),
            "{name}, r3's, was not taken over"
        );
    }

    // Every transition stored exactly once, tagged with the replica that saw
    // it; the same history from both survivors; and what every Watch saw.
    for service in &services {
        let stored: Vec<Transition> = transitions(&urls[0], service)
            .await
            .into_iter()
            .filter(|t| t.at_unix_ms >= t0_ms)
            .collect();
        let tos: Vec<i32> = stored.iter().map(|t| t.to).collect();
        assert_eq!(tos, expected[1..], "{service}: {stored:#?}");
        for pair in stored.windows(2) {
            assert_eq!(pair[0].to, pair[1].from, "{service}: {stored:#?}");
        }
        assert!(
            stored
                .iter()
                .all(|t| t.cause == Cause::Monitor as i32 && names.contains(&t.replica.as_str())),
            "{service}: {stored:#?}"
        );
        let other: Vec<Transition> = transitions(&urls[1], service)
            .await
            .into_iter()
            .filter(|t| t.at_unix_ms >= t0_ms)
            .collect();
        assert_eq!(
            other, stored,
            "{service}: the same history on every replica"
        );
    }
    drop(replicas);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_ten_seconds_then_started_loses_nothing() {
    let mut pg = Postgres::start();
    let admin = ["--admin-listen", "127.0.0.1:0"];
    let a = replica(&pg, "a", &admin);
    let b = replica(&pg, "b", &admin);
    let set = |replica: &Binary, service: &str, status: &str| {
        let admin = replica.admin.unwrap().to_string();
        let (code, _, err) = run_cli(&["set", "--admin", &admin, service, status]);
        assert_eq!(code, 0, "{err}");
    };

    // Check answered throughout, on both: every 100 ms, each within 2 s.
    let running = Arc::new(AtomicBool::new(true));
    let checker = {
        let (running, urls) = (running.clone(), [a.url(), b.url()]);
        tokio::spawn(async move {
            let mut clients = Vec::new();
            for url in &urls {
                clients.push(client(url).await);
            }
            let (mut answered, mut failed) = (0, Vec::new());
            while running.load(Ordering::SeqCst) {
                for client in &mut clients {
                    let check = client.check(req(""));
                    match tokio::time::timeout(Duration::from_secs(2), check).await {
                        Ok(Ok(_)) => answered += 1,
                        other => failed.push(format!("{other:?}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (answered, failed)
        })
    };

    set(&a, "pay", "SERVING");
    until("b hears of a's change", LIMIT, || {
        let b = b.url();
        async move { status(&b, "pay").await == Some(SERVING) }
    })
    .await;

    // Ten seconds without the database; both replicas go on changing statuses.
    pg.stop();
    let words = ["NOT_SERVING", "SERVING"];
    for i in 0..10 {
        set(&a, "pay", words[i % 2]);
        set(&b, "db", words[i % 2]);
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    // Said on the page and in /metrics.
    let away = instance(&a.url()).await;
    assert_eq!(away["history"]["up"], false, "{away}");
    assert!(
        away["history"]["buffered"].as_u64().unwrap() >= 10,
        "{away}"
    );
    let metrics = get_ok(&format!("{}/metrics", a.url())).await;
    assert!(
        metrics.lines().any(|l| l == "healthweb_history_store_up 0"),
        "{metrics}"
    );
    pg.restart();

    // Every change written once, in order, and both replicas agree again.
    let changes = |service: &'static str, url: String| async move {
        transitions(&url, service)
            .await
            .iter()
            .map(|t| (t.from, t.to, t.replica.clone()))
            .collect::<Vec<_>>()
    };
    let gone = ServingStatus::ServiceUnknown as i32;
    let mut want_pay = vec![(gone, SERVING, "a".to_owned())];
    let mut want_db = vec![(gone, NOT, "b".to_owned())];
    for i in 0..10 {
        let (from, to) = if i % 2 == 0 {
            (SERVING, NOT)
        } else {
            (NOT, SERVING)
        };
        want_pay.push((from, to, "a".into()));
        if i > 0 {
            want_db.push((from, to, "b".into()));
        }
    }
    until("the kept changes are written", LIMIT, || {
        let (a, b) = (a.url(), b.url());
        let (want_pay, want_db) = (want_pay.clone(), want_db.clone());
        async move {
            changes("pay", b.clone()).await == want_pay && changes("db", a).await == want_db
        }
    })
    .await;
    until("both replicas agree", LIMIT, || {
        let (a, b) = (a.url(), b.url());
        async move {
            status(&a, "db").await == Some(SERVING) && status(&b, "pay").await == Some(SERVING)
        }
    })
    .await;
    let back = instance(&a.url()).await;
    assert_eq!(back["history"]["up"], true, "{back}");
    assert_eq!(back["history"]["buffered"], 0, "{back}");

    running.store(false, Ordering::SeqCst);
    let (answered, failed) = checker.await.unwrap();
    assert!(failed.is_empty(), "Checks failed: {failed:#?}");
    assert!(answered >= 100, "{answered} Checks answered");
    // Said once in the log, and once that it is back.
    let log = drain(&a.stderr);
    let said = |needle: &str| log.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(said("history store cannot be reached"), 1, "{log:#?}");
    assert_eq!(said("history store is back"), 1, "{log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_hands_the_leases_back_at_once() {
    let (pg, upstreams, config) = setup(4).await;
    let config = config.as_str();
    // A minute's leases: waiting for them to expire would outlast every bound here.
    let long = ["--config", config, "--lease-period", "60s"];
    let stays = replica(&pg, "stays", &long);
    let mut leaves = replica(
        &pg,
        "leaves",
        &[&long[..], &["--drain-delay", "20s"][..]].concat(),
    );
    until("two each", LIMIT, || {
        let urls = [stays.url(), leaves.url()];
        async move { probing(&urls[0]).await.len() == 2 && probing(&urls[1]).await.len() == 2 }
    })
    .await;
    leaves.signal(Signal::SIGTERM);
    let asked = Instant::now();
    until("the other takes all four", LIMIT, || {
        let url = stays.url();
        async move { probing(&url).await.len() == 4 }
    })
    .await;
    assert!(
        leaves.child.try_wait().unwrap().is_none(),
        "handed back while still draining, not at exit"
    );
    // The one leaving stopped probing before the other began.
    until("the other probes all four", LIMIT, || {
        let probes = upstreams.probes_since(asked);
        let all = (0..4).all(|u| runs(&probes, u).last().is_some_and(|r| r == "stays"));
        async move { all }
    })
    .await;
    let probes = upstreams.probes_since(asked);
    for upstream in 0..4 {
        let runs = runs(&probes, upstream);
        assert!(runs.len() <= 2, "u{upstream}: {runs:?}");
    }
}

/// A TCP proxy to PostgreSQL that can be cut: from then on it forwards nothing
/// and answers nothing, but keeps every connection open, as a partition does.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
}

/// Copies `from` to `to` until either ends or the proxy is cut; after the cut,
/// what comes is swallowed: no answer, no reset.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    cut: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if cut.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    async fn start(to: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let cutting = cut.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((client, _)) = listener.accept().await {
                if cutting.load(Ordering::SeqCst) {
                    held.push(client);
                    continue;
                }
                let cut = cutting.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", to)).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        forward(client_read, server_write, cut.clone()),
                        forward(server_read, client_write, cut),
                    );
                });
            }
        });
        Self { port, cut }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_the_database_stops_probing_before_its_leases_expire() {
    let (pg, upstreams, config) = setup(4).await;
    let config = config.as_str();
    let proxy = Proxy::start(pg.port).await;
    let direct = replica(&pg, "direct", &["--config", config]);
    let behind = pg
        .url()
        .replace(&pg.port.to_string(), &proxy.port.to_string());
    let cut_off = Binary::serve(&[
        "--history",
        &behind,
        "--replica-id",
        "cut-off",
        "--lease-period",
        "3s",
        "--history-timeout",
        "1s",
        "--config",
        config,
    ]);
    until("two each", LIMIT, || {
        let urls = [direct.url(), cut_off.url()];
        async move { probing(&urls[0]).await.len() == 2 && probing(&urls[1]).await.len() == 2 }
    })
    .await;
    let cut = Instant::now();
    proxy.cut();
    until("the one still connected takes all four", LIMIT, || {
        let url = direct.url();
        async move { probing(&url).await.len() == 4 }
    })
    .await;
    // Let the cut-off one try on a while: it must not start again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let probes = upstreams.probes_since(cut);
    for upstream in 0..4 {
        let runs = runs(&probes, upstream);
        assert!(
            runs.len() <= 2 && runs.last().is_some_and(|r| r == "direct"),
            "u{upstream}: {runs:?}"
        );
    }
    // It still answers Health, without the database.
    let mut health = client(&cut_off.url()).await;
    let status = within(health.check(req("u0"))).await.unwrap().into_inner();
    assert!(status.status == SERVING || status.status == NOT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_refused_passwords_stop_the_start_with_a_clear_error() {
    let pg = Postgres::start();
    let serve = |url: &str, env: &[(&str, &str)]| {
        run_cli_env(&["serve", "--listen", "127.0.0.1:0", "--history", url], env)
    };
    let refused = |(code, _, stderr): (i32, String, String), says: &str| {
        assert_eq!(code, 1, "{stderr}");
        assert!(!stderr.contains("listening on"), "{stderr}");
        assert!(stderr.contains(says), "{says:?} in {stderr}");
        assert!(
            !stderr.contains("sesame"),
            "a password was printed: {stderr}"
        );
        stderr
    };
    let wrong = format!(
        "postgres://healthweb:open-sesame@127.0.0.1:{}/healthweb",
        pg.port
    );
    refused(serve(&wrong, &[]), "password authentication failed");
    let unparsable = "postgres://healthweb:open-sesame@127.0.0.1:notaport/healthweb";
    refused(
        serve(unparsable, &[]),
        "cannot use --history postgres://healthweb:***@",
    );
    let nowhere = format!("{}/nowhere", pg.url().rsplit_once('/').unwrap().0);
    refused(serve(&nowhere, &[]), "database \"nowhere\" does not exist");
    let sesame = [("HEALTHWEB_HISTORY_PASSWORD", "open-sesame")];
    refused(
        serve(&pg.bare_url(), &sesame),
        "password authentication failed",
    );

    // The right password, from a file or the environment: it starts.
    let file = pg.file("password.txt", &format!("{}\n", pg.password));
    let from_file = Binary::serve(&[
        "--history",
        &pg.bare_url(),
        "--history-password-file",
        file.to_str().unwrap(),
    ]);
    let from_env = Binary::serve_with(&["--history", &pg.bare_url()], |command| {
        command.env("HEALTHWEB_HISTORY_PASSWORD", &pg.password);
    });
    for server in [&from_file, &from_env] {
        let page = instance(&server.url()).await;
        assert_eq!(page["history"]["kind"], "postgres", "{page}");
        assert_eq!(page["history"]["up"], true, "{page}");
        assert!(!page.to_string().contains(&pg.password), "{page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_goes_to_postgres_over_tls() {
    let ca = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca);
    let cert = params.signed_by(&key, &issuer).unwrap();

    let mut pg = Postgres::start();
    // The server's files, owned by it (the key readable by it alone).
    let cert_file = pg.file("server.crt", &cert.pem());
    let key_file = pg.file("server.key", &key.serialize_pem());
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    pg.stop();
    pg.add_options(&[
        "ssl=on",
        &format!("ssl_cert_file={}", cert_file.display()),
        &format!("ssl_key_file={}", key_file.display()),
    ]);
    pg.restart();
    let ca_file = pg.file("ca.pem", &ca_cert.pem());
    let url = format!("{}?sslmode=require", pg.url());
    let server = Binary::serve(&[
        "--history",
        &url,
        "--history-ca",
        ca_file.to_str().unwrap(),
        "--service",
        "tls=SERVING",
    ]);
    until("the history is written", LIMIT, || {
        let url = server.url();
        async move { !transitions(&url, "tls").await.is_empty() }
    })
    .await;
    let client = pg.client().await;
    let encrypted: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = 'healthweb' AND s.ssl",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted >= 1, "healthweb's connections are not encrypted");

    // Asked to verify without the CA, the certificate does not verify (it is no
    // system root's): refused before listening.
    let full = url.replace("sslmode=require", "sslmode=verify-full");
    let (code, _, stderr) = run_cli(&["serve", "--listen", "127.0.0.1:0", "--history", &full]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("TLS"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    // Not asked to, as libpq: encrypted, not verified, and it starts.
    let unverified = Binary::serve(&["--history", &url]);
    let page = instance(&unverified.url()).await;
    assert_eq!(page["history"]["up"], true, "{page}");
}
