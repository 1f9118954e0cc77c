//! Alerts against real HTTP receivers started here on 127.0.0.1: one that takes
//! everything, one that fails its first three tries, one that never answers,
//! one that checks the signature with another key; a `kill -9` while an alert
//! fires; and configs refused at start with the line that is wrong.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use healthweb_proto::{
    history::{TransitionsRequest, UptimeRequest, history_client::HistoryClient},
    pb::{HealthCheckRequest, health_check_response::ServingStatus},
};
use healthweb_server::alert::deliver::signature;
use nix::sys::signal::Signal;
use tokio::net::TcpListener;

use http::Method;

use crate::util::{
    Binary, Http, TestServer, drain, get_ok, raw, req, run_cli, run_cli_env, within,
};

/// How a test receiver answers.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// 200 to everything.
    Ok,
    /// 500 to the first `n` requests, then 200.
    FailFirst(usize),
    /// Never answers.
    Hang,
    /// Checks `x-healthweb-signature-256` with this key: 401 when it differs.
    CheckSignature(&'static [u8]),
}

/// One request as a receiver saw it.
#[derive(Clone, Debug)]
struct Got {
    headers: HeaderMap,
    body: Bytes,
}

impl Got {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    async fn start(behaviour: Behaviour) -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/hook", post(answer))
            .with_state((behaviour, got.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, got }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The notifications' kinds, in the order they came.
    fn kinds(&self) -> Vec<String> {
        self.got()
            .iter()
            .map(|g| g.json()["kind"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until it has had `n` requests.
    async fn wait_for(&self, n: usize) -> Vec<Got> {
        within(async {
            loop {
                let got = self.got();
                if got.len() >= n {
                    return got;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
    }
}

type Shared = (Behaviour, Arc<Mutex<Vec<Got>>>);

async fn answer(
    State((behaviour, got)): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let n = {
        let mut got = got.lock().unwrap();
        got.push(Got {
            headers: headers.clone(),
            body: body.clone(),
        });
        got.len()
    };
    match behaviour {
        Behaviour::Ok => StatusCode::OK,
        Behaviour::FailFirst(fails) if n <= fails => StatusCode::INTERNAL_SERVER_ERROR,
        Behaviour::FailFirst(_) => StatusCode::OK,
        Behaviour::Hang => std::future::pending().await,
        Behaviour::CheckSignature(key) => {
            let sent = headers
                .get("x-healthweb-signature-256")
                .and_then(|v| v.to_str().ok());
            if sent == Some(signature(key, &body).as_str()) {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            }
        }
    }
}

/// Writes `text` to `healthweb.toml` in `dir`.
fn config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("healthweb.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn serve_config(path: std::path::PathBuf) -> TestServer {
    TestServer::with(|s| s.config = Some(path)).await
}

/// The value of a `/metrics` series, 0 if absent.
async fn series(url: &str, line_start: &str) -> f64 {
    let text = get_ok(&format!("{url}/metrics")).await;
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn wait_series(url: &str, line_start: &str, at_least: f64) {
    within(async {
        while series(url, line_start).await < at_least {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blip_sends_nothing_an_outage_one_alert_then_one_resolution_signed() {
    let receiver = Receiver::start(Behaviour::CheckSignature(b"hook-key")).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "hook-key\n").unwrap();
    let path = config(
        dir.path(),
        &format!(
            r#"
public_url = "https://status.example.com/"
[services]
payments = "SERVING"

[[alert]]
name = "ops"
type = "webhook"
url = "{}"
secret_file = "{}"

[[alert_rule]]
name = "pay"
services = ["pay*"]
receivers = ["ops"]
failure_threshold = "2s"
success_threshold = "1s"
"#,
            receiver.url(),
            dir.path().join("key").display()
        ),
    );
    let server = serve_config(path).await;

    // A blip well under the threshold: nothing, even long after the threshold.
    server.set([
        ("payments", ServingStatus::NotServing),
        ("payments", ServingStatus::Serving),
    ]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(receiver.got().is_empty(), "{:?}", receiver.kinds());

    // An outage: one alert, then after recovery one resolution.
    server
        .registry
        .set("payments", ServingStatus::NotServing)
        .unwrap();
    let got = receiver.wait_for(1).await;
    let firing = got[0].json();
    assert_eq!(firing["version"], "healthweb.alert.v1");
    assert_eq!(firing["kind"], "firing");
    assert_eq!(firing["service"], "payments");
    assert_eq!(firing["rule"], "pay");
    assert_eq!(firing["status"], "NOT_SERVING");
    assert_eq!(firing["previous"], "SERVING");
    assert_eq!(firing["cause"], "program");
    assert_eq!(firing["link"], "https://status.example.com/#payments");
    assert!(firing["since"].as_str().unwrap().ends_with('Z'), "{firing}");
    assert_eq!(
        got[0].headers["x-healthweb-delivery"],
        firing["event_id"].as_str().unwrap()
    );
    wait_series(
        &server.url(),
        "healthweb_alerts_firing{service=\"payments\"}",
        1.0,
    )
    .await;

    server
        .registry
        .set("payments", ServingStatus::Serving)
        .unwrap();
    let got = receiver.wait_for(2).await;
    let resolved = got[1].json();
    assert_eq!(resolved["kind"], "resolved");
    assert_eq!(resolved["alert_id"], firing["alert_id"]);
    assert_ne!(resolved["event_id"], firing["event_id"]);
    assert_eq!(resolved["status"], "SERVING");
    // The receiver checked both signatures: both were delivered.
    wait_series(
        &server.url(),
        "healthweb_alerts_sent_total{receiver=\"ops\",outcome=\"delivered\"}",
        2.0,
    )
    .await;
    // And nothing more comes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.kinds(), ["firing", "resolved"]);
    assert_eq!(
        series(
            &server.url(),
            "healthweb_alerts_firing{service=\"payments\"}"
        )
        .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_deliver_a_hung_receiver_fails_past_its_deadline_and_holds_nothing_else() {
    let flaky = Receiver::start(Behaviour::FailFirst(3)).await;
    let hung = Receiver::start(Behaviour::Hang).await;
    let wrong = Receiver::start(Behaviour::CheckSignature(b"another key")).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "our key\n").unwrap();
    let path = config(
        dir.path(),
        &format!(
            r#"
[services]
db = "SERVING"
[[alert]]
name = "flaky"
type = "webhook"
url = "{}"
backoff = "100ms"
max_backoff = "400ms"
deadline = "5m"
[[alert]]
name = "hung"
type = "webhook"
url = "{}"
timeout = "300ms"
backoff = "100ms"
deadline = "3s"
[[alert]]
name = "wrong"
type = "webhook"
url = "{}"
secret_file = "{}"
[[alert_rule]]
name = "db"
services = ["db"]
receivers = ["flaky", "hung", "wrong"]
"#,
            flaky.url(),
            hung.url(),
            wrong.url(),
            dir.path().join("key").display()
        ),
    );
    let server = serve_config(path).await;
    let url = server.url();
    server
        .registry
        .set("db", ServingStatus::NotServing)
        .unwrap();

    // The flaky receiver: three 500s, then delivered, with one event id.
    let got = flaky.wait_for(4).await;
    let ids: Vec<_> = got.iter().map(|g| g.json()["event_id"].clone()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let flaky_sent = "healthweb_alerts_sent_total{receiver=\"flaky\",outcome=";
    wait_series(&url, &format!("{flaky_sent}\"delivered\"}}"), 1.0).await;
    assert_eq!(
        series(&url, &format!("{flaky_sent}\"retried\"}}")).await,
        3.0
    );

    // The wrong key: refused at once, recorded as failed.
    wait_series(
        &url,
        "healthweb_alerts_sent_total{receiver=\"wrong\",outcome=\"failed\"}",
        1.0,
    )
    .await;
    assert_eq!(wrong.got().len(), 1);

    // While the hung receiver holds its request, Check and Watch answer.
    hung.wait_for(1).await;
    let mut client = server.client().await;
    let mut watch = within(client.watch(req("db"))).await.unwrap().into_inner();
    let first = within(watch.message()).await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::NotServing as i32);
    server.registry.set("db", ServingStatus::Serving).unwrap();
    let next = within(watch.message()).await.unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::Serving as i32);
    let check = within(client.check(HealthCheckRequest {
        service: "db".into(),
    }))
    .await
    .unwrap();
    assert_eq!(check.into_inner().status, ServingStatus::Serving as i32);

    // Past its deadline the hung receiver's notification is a recorded failure.
    wait_series(
        &url,
        "healthweb_alerts_sent_total{receiver=\"hung\",outcome=\"failed\"}",
        1.0,
    )
    .await;
    assert!(hung.got().len() >= 2, "retried before giving up");
    // The flaky one, meanwhile, had the resolution too.
    let got = flaky.wait_for(5).await;
    assert_eq!(got.last().unwrap().json()["kind"], "resolved");
}

#[test]
fn kill_9_while_firing_neither_repeats_nor_forgets() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime.block_on(Receiver::start(Behaviour::Ok));
    let dir = tempfile::tempdir().unwrap();
    let body = |status: &str| {
        format!(
            "[services]\napi = \"{status}\"\n[[alert]]\nname = \"ops\"\ntype = \"webhook\"\n\
             url_env = \"OPS_HOOK_URL\"\n[[alert_rule]]\nname = \"api\"\nservices = [\"api\"]\n\
             receivers = [\"ops\"]\n"
        )
    };
    let path = config(dir.path(), &body("NOT_SERVING"));
    let history = dir.path().join("history.db");
    let args = [
        "--config",
        path.to_str().unwrap(),
        "--history",
        history.to_str().unwrap(),
    ];
    let hook = receiver.url();
    let serve = || {
        Binary::serve_with(&args, |c| {
            c.env("OPS_HOOK_URL", &hook);
        })
    };
    let first = serve();
    runtime.block_on(receiver.wait_for(1));
    // Recorded as delivered (counted once written), then killed outright.
    runtime.block_on(wait_series(
        &first.url(),
        "healthweb_alerts_sent_total{receiver=\"ops\",outcome=\"delivered\"}",
        1.0,
    ));
    first.signal(Signal::SIGKILL);
    drop(first);

    // Still bad after the restart: no second alert.
    let second = serve();
    runtime.block_on(wait_series(
        &second.url(),
        "healthweb_alerts_firing{service=\"api\"}",
        1.0,
    ));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.kinds(), ["firing"]);

    // Good again: the resolution of the alert fired before the kill.
    std::fs::write(&path, body("SERVING")).unwrap();
    second.signal(Signal::SIGHUP);
    let got = runtime.block_on(receiver.wait_for(2));
    assert_eq!(receiver.kinds(), ["firing", "resolved"]);
    assert_eq!(got[0].json()["alert_id"], got[1].json()["alert_id"]);
}

#[test]
fn bad_alert_configs_are_refused_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[[alert]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"ftp://example.com/x\"\n",
            "line 1",
            "bad url",
        ),
        (
            "[[alert]]\nname = \"ops\"\ntype = \"slack\"\nurl = \"http://127.0.0.1:9/x\"\n\
             [[alert_rule]]\nname = \"r\"\nservices = [\"ok\", \"pay[\"]\nreceivers = [\"ops\"]\n",
            "line 7",
            "bad glob",
        ),
        (
            "[[alert_rule]]\nname = \"r\"\nservices = [\"a\"]\nreceivers = [\"nobody\"]\n",
            "",
            "no [[alert]] is named \"nobody\"",
        ),
        (
            "[services]\na = \"SERVING\"\n\n[[maintenance]]\nname = \"always\"\nservices = [\"a\"]\n\
             start = \"00:00\"\nduration = \"2d\"\ndays = [\"mon\", \"wed\", \"fri\", \"sun\"]\n",
            "line 4",
            "never ends",
        ),
    ];
    for (text, line, says) in cases {
        let path = config(dir.path(), text);
        let (code, _, err) = run_cli(&["serve", "--config", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{text}: {err}");
        assert!(err.contains(says), "{text}: {err}");
        assert!(err.contains(line), "{text}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_test_sends_one_notification_and_prints_the_answer() {
    let ok = Receiver::start(Behaviour::Ok).await;
    let strict = Receiver::start(Behaviour::CheckSignature(b"their key")).await;
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        &format!(
            "[[alert]]\nname = \"ok\"\ntype = \"slack\"\nurl = \"{}\"\n\
             [[alert]]\nname = \"strict\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            ok.url(),
            strict.url()
        ),
    );
    let file = path.to_str().unwrap().to_owned();
    let cli = |receiver: &'static str| {
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            run_cli(&["alert", "test", "--config", &file, receiver])
        })
    };
    let (code, out, err) = cli("ok").await.unwrap();
    assert_eq!((code, out.as_str()), (0, "ok: HTTP 200\n"), "{err}");
    let slack = ok.got()[0].json();
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .contains("test notification"),
        "{slack}"
    );
    assert_eq!(slack["blocks"][0]["type"], "section");

    let (code, out, _) = cli("strict").await.unwrap();
    assert_eq!((code, out.as_str()), (3, "strict: HTTP 401\n"));
    let (code, _, err) = cli("nobody").await.unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("no [[alert]] named \"nobody\""), "{err}");
}

/// Sets `service` through `server`'s admin API.
fn set(server: &Binary, service: &str, status: &str) {
    let admin = server.admin.unwrap().to_string();
    let (code, _, err) = run_cli(&["set", "--admin", &admin, service, status]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn three_replicas_on_postgres_send_each_notification_once_also_when_the_sender_is_killed() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime.block_on(Receiver::start(Behaviour::Ok));
    let pg = crate::pg::Postgres::start();
    let path = pg.file(
        "healthweb.toml",
        &format!(
            "[services]\nsvc = \"SERVING\"\n[[alert]]\nname = \"ops\"\ntype = \"webhook\"\n\
             url = \"{}\"\n[[alert_rule]]\nname = \"svc\"\nservices = [\"svc\"]\n\
             receivers = [\"ops\"]\nfailure_threshold = \"1s\"\nsuccess_threshold = \"1s\"\n",
            receiver.url()
        ),
    );
    let url = pg.url();
    let replica = |name: &str| {
        Binary::serve(&[
            "--history",
            &url,
            "--replica-id",
            name,
            "--lease-period",
            "3s",
            "--config",
            path.to_str().unwrap(),
            "--admin-listen",
            "127.0.0.1:0",
        ])
    };
    let mut replicas: Vec<(String, Binary)> = ["r1", "r2", "r3"]
        .iter()
        .map(|name| (name.to_string(), replica(name)))
        .collect();

    // One outage, seen by all three: one alert.
    set(&replicas[0].1, "svc", "NOT_SERVING");
    let got = runtime.block_on(receiver.wait_for(1));
    let sender = got[0].json()["replica"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(receiver.kinds(), ["firing"]);

    // The replica that sends is killed; the recovery is made through another,
    // and one of the two left sends the resolution, once.
    let killed = replicas
        .iter()
        .position(|(name, _)| *name == sender)
        .unwrap();
    let (_, mut gone) = replicas.remove(killed);
    gone.signal(Signal::SIGKILL);
    gone.wait(Duration::from_secs(10)).expect("killed");
    set(&replicas[0].1, "svc", "SERVING");
    let got = runtime.block_on(receiver.wait_for(2));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(receiver.kinds(), ["firing", "resolved"]);
    assert_eq!(got[0].json()["alert_id"], got[1].json()["alert_id"]);
    assert_ne!(got[1].json()["replica"], sender);

    // And again with the new sender: one alert, from it.
    set(&replicas[1].1, "svc", "NOT_SERVING");
    runtime.block_on(receiver.wait_for(3));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(receiver.kinds(), ["firing", "resolved", "firing"]);
}

#[test]
fn maintenance_windows_hold_alerts_until_they_end() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime.block_on(Receiver::start(Behaviour::Ok));
    let dir = tempfile::tempdir().unwrap();
    let began =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() - Duration::from_secs(60));
    let path = config(
        dir.path(),
        &format!(
            r#"
[services]
db-main = "SERVING"
db-other = "SERVING"
[[alert]]
name = "ops"
type = "webhook"
url = "{}"
[[alert_rule]]
name = "db"
services = ["db-*"]
receivers = ["ops"]
[[maintenance]]
name = "upgrade"
services = ["db-main"]
start = "{began}"
duration = "1h"
"#,
            receiver.url()
        ),
    );
    let server = Binary::serve(&[
        "--config",
        path.to_str().unwrap(),
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let admin = format!("http://{}", server.admin.unwrap());
    let json = [("content-type", "application/json")];
    let opened = runtime.block_on(raw(
        Http::H1,
        &format!("{admin}/maintenance"),
        Method::POST,
        &json,
        r#"{"services": ["db-other"], "duration": "1h", "reason": "reindex"}"#,
    ));
    assert_eq!(opened.status, 201, "{:?}", opened.body);
    let opened: serde_json::Value = serde_json::from_slice(&opened.body).unwrap();
    let id = opened["id"].as_str().unwrap();
    // A bad request says what to send.
    let bad = runtime.block_on(raw(
        Http::H1,
        &format!("{admin}/maintenance"),
        Method::POST,
        &json,
        r#"{"services": ["db-["], "duration": "1h"}"#,
    ));
    assert_eq!(bad.status, 400);
    assert!(
        String::from_utf8_lossy(&bad.body).contains("bad glob"),
        "{:?}",
        bad.body
    );
    let listed = runtime.block_on(get_ok(&format!("{admin}/maintenance")));
    assert!(
        listed.contains("\"upgrade\"") && listed.contains(id),
        "{listed}"
    );

    // Both go down inside their windows: statuses change, alerts are held.
    set(&server, "db-main", "NOT_SERVING");
    set(&server, "db-other", "NOT_SERVING");
    let alerts = runtime.block_on(async {
        within(async {
            loop {
                let text = get_ok(&format!("{}/alerts", server.url())).await;
                let alerts: serde_json::Value = serde_json::from_str(&text).unwrap();
                if alerts["services"]["db-other"]["maintenance_until_ms"].is_i64() {
                    return alerts;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
    });
    assert!(
        alerts["services"]["db-main"]["maintenance_until_ms"].is_i64(),
        "{alerts}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(receiver.got().is_empty(), "{:?}", receiver.kinds());

    // The ad hoc window ends: its service's alert goes out; the other stays held.
    let ended = runtime.block_on(raw(
        Http::H1,
        &format!("{admin}/maintenance/{id}"),
        Method::DELETE,
        &json,
        "",
    ));
    assert_eq!(ended.status, 200, "{:?}", ended.body);
    let got = runtime.block_on(receiver.wait_for(1));
    assert_eq!(got[0].json()["service"], "db-other");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.kinds(), ["firing"]);
    let text = runtime.block_on(get_ok(&format!("{}/alerts", server.url())));
    let alerts: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        alerts["services"]["db-other"]["firing"].is_object(),
        "{alerts}"
    );
    assert_eq!(alerts["services"]["db-other"]["last"]["state"], "delivered");
    assert!(
        alerts["services"]["db-main"]["firing"].is_null(),
        "{alerts}"
    );

    // History marks the change made inside the window, not the one before it.
    let marks = runtime.block_on(async {
        let channel = tonic::transport::Channel::from_shared(server.url()).unwrap();
        let mut history = HistoryClient::new(channel.connect().await.unwrap());
        let request = TransitionsRequest {
            service: "db-other".into(),
            ..Default::default()
        };
        let reply = history.transitions(request).await.unwrap().into_inner();
        reply
            .transitions
            .iter()
            .map(|t| (t.to, t.in_maintenance))
            .collect::<Vec<_>>()
    });
    let (not, serving) = (
        ServingStatus::NotServing as i32,
        ServingStatus::Serving as i32,
    );
    assert_eq!(marks, [(not, true), (serving, false)]);

    // Uptime reports the windows apart: db-main was down only inside its window,
    // so none of its time counts as down; db-other is down past the end of its own.
    let day = |service: &str| {
        runtime.block_on(async {
            let channel = tonic::transport::Channel::from_shared(server.url()).unwrap();
            let mut history = HistoryClient::new(channel.connect().await.unwrap());
            let request = UptimeRequest {
                service: service.into(),
                ..Default::default()
            };
            let reply = history.uptime(request).await.unwrap().into_inner();
            reply.day.unwrap()
        })
    };
    let main = day("db-main");
    assert!(
        main.maintenance_ms > 0 && main.recorded_ms == 0,
        "db-main: {main:?}"
    );
    let other = day("db-other");
    assert!(
        other.maintenance_ms > 0 && other.recorded_ms > 0 && other.serving < 1.0,
        "db-other: {other:?}"
    );
}

#[test]
fn secrets_never_reach_the_logs_the_pages_or_the_metrics() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Fails twice, so that the retries (and whatever they log) happen too.
    let receiver = runtime.block_on(Receiver::start(Behaviour::FailFirst(2)));
    let (token, key) = ("SeCrEtToKeN42", "HmacKeY77");
    let url = format!("{}?token={token}", receiver.url());
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        r#"
[services]
db = "SERVING"
[[alert]]
name = "ops"
type = "webhook"
url_env = "OPS_HOOK_URL"
secret_env = "OPS_HOOK_KEY"
backoff = "100ms"
[[alert_rule]]
name = "db"
services = ["db"]
receivers = ["ops"]
"#,
    );
    let path = path.to_str().unwrap();
    let server = Binary::serve_with(
        &[
            "--history",
            "memory",
            "--config",
            path,
            "--admin-listen",
            "127.0.0.1:0",
        ],
        |command| {
            command
                .env("HEALTHWEB_LOG", "debug")
                .env("OPS_HOOK_URL", &url)
                .env("OPS_HOOK_KEY", key);
        },
    );
    set(&server, "db", "NOT_SERVING");
    let got = runtime.block_on(receiver.wait_for(3));
    // The secrets were used: the third try was signed with the key and delivered.
    let signed = got[2].headers["x-healthweb-signature-256"]
        .to_str()
        .unwrap();
    assert_eq!(signed, signature(key.as_bytes(), &got[2].body));

    let mut seen = server.before.join("\n");
    for page in ["/metrics", "/alerts", "/instance", "/upstreams"] {
        seen += &runtime.block_on(get_ok(&format!("{}{page}", server.url())));
    }
    let admin = server.admin.unwrap();
    seen += &runtime.block_on(get_ok(&format!("http://{admin}/maintenance")));
    let env = [("OPS_HOOK_URL", url.as_str()), ("OPS_HOOK_KEY", key)];
    let (code, out, err) = run_cli_env(&["alert", "test", "ops", "--config", path], &env);
    assert_eq!(code, 0, "{out}{err}");
    seen += &out;
    seen += &err;
    std::thread::sleep(Duration::from_millis(500));
    seen += &drain(&server.stderr).join("\n");
    assert!(seen.contains("ops"), "the receiver is named: {seen}");
    assert!(
        !seen.contains(token) && !seen.contains(key),
        "a secret was printed: {seen}"
    );
}
