//! `healthweb.v1.Statuses/WatchAll`, the whole fleet on one stream, over native
//! gRPC (tonic's client) and gRPC-Web (raw bytes, every mode): the snapshot, the
//! changes, resuming with and without a gap, and a client that never reads.

use std::{collections::BTreeMap, time::Duration};

use futures_util::StreamExt;
use healthweb_proto::{
    pb::health_check_response::ServingStatus,
    statuses::{WatchAllRequest, WatchAllResponse, statuses_client::StatusesClient},
};
use prost::Message;
use tonic::{Streaming, transport::Channel};

use crate::{
    grpc_web::{MODES, call_path},
    util::{LIMIT, TestServer, frame, status_of, within},
};

const WATCH_ALL: &str = healthweb_proto::wire::path::WATCH_ALL;

async fn connect(server: &TestServer) -> StatusesClient<Channel> {
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect_timeout(LIMIT)
        // hyper's client opens with 2 MiB windows; a small one makes "stops
        // reading" take effect after a few messages.
        .initial_stream_window_size(16 * 1024)
        .initial_connection_window_size(16 * 1024)
        .connect()
        .await
        .unwrap();
    StatusesClient::new(channel)
}

async fn open(client: &mut StatusesClient<Channel>, token: &str) -> Streaming<WatchAllResponse> {
    let request = WatchAllRequest {
        resume_token: token.into(),
    };
    within(client.watch_all(request))
        .await
        .unwrap()
        .into_inner()
}

async fn next(stream: &mut Streaming<WatchAllResponse>) -> WatchAllResponse {
    within(stream.next()).await.unwrap().unwrap()
}

/// What a client holds: every service's status, as the messages say.
#[derive(Default, Debug)]
struct Fleet {
    statuses: BTreeMap<String, ServingStatus>,
    token: String,
    resets: usize,
    /// Statuses received, snapshots' and changes' alike.
    received: usize,
}

impl Fleet {
    fn apply(&mut self, message: WatchAllResponse) {
        if message.reset {
            self.statuses.clear();
            self.resets += 1;
        }
        self.received += message.statuses.len();
        for entry in message.statuses {
            match status_of(entry.status) {
                ServingStatus::ServiceUnknown => self.statuses.remove(&entry.service),
                status => self.statuses.insert(entry.service, status),
            };
        }
        if message.synced {
            assert!(!message.resume_token.is_empty(), "a synced message resumes");
            self.token = message.resume_token;
        } else {
            assert!(message.resume_token.is_empty(), "mid-snapshot: no token");
        }
    }

    /// Reads until the client holds `want`.
    async fn until(
        &mut self,
        stream: &mut Streaming<WatchAllResponse>,
        want: &BTreeMap<String, ServingStatus>,
    ) {
        while &self.statuses != want {
            self.apply(next(stream).await);
        }
    }
}

fn registered(server: &TestServer) -> BTreeMap<String, ServingStatus> {
    server.registry.list()
}

async fn many(count: usize) -> TestServer {
    TestServer::serving((0..count).map(|i| (format!("svc-{i:05}"), ServingStatus::Serving))).await
}

#[tokio::test]
async fn a_snapshot_in_batches_then_each_change() {
    let server = many(2500).await;
    let mut client = connect(&server).await;
    let mut stream = open(&mut client, "").await;
    let mut fleet = Fleet::default();
    let first = next(&mut stream).await;
    assert!(
        first.reset && !first.synced,
        "the snapshot's first of three"
    );
    assert_eq!(first.statuses.len(), 1000);
    assert_eq!(
        first.statuses[0].service, "",
        "by name: the whole server first"
    );
    fleet.apply(first);
    for _ in 0..2 {
        fleet.apply(next(&mut stream).await);
    }
    assert_eq!(fleet.statuses, registered(&server));
    assert_eq!(fleet.resets, 1);
    let token = fleet.token.clone();

    server
        .registry
        .set("svc-00007", ServingStatus::NotServing)
        .unwrap();
    let change = next(&mut stream).await;
    assert!(!change.reset && change.synced);
    assert_eq!(change.statuses.len(), 1);
    assert_eq!(change.statuses[0].service, "svc-00007");
    assert_eq!(
        status_of(change.statuses[0].status),
        ServingStatus::NotServing
    );
    assert_ne!(change.resume_token, token, "the position moved");
    fleet.apply(change);

    server.registry.remove("svc-00008").unwrap();
    server.registry.set("new", ServingStatus::Unknown).unwrap();
    fleet.until(&mut stream, &registered(&server)).await;
    assert!(!fleet.statuses.contains_key("svc-00008"));
    assert_eq!(fleet.resets, 1, "changes never bring a second snapshot");
    assert_eq!(server.registry.followers(), 1);
}

#[tokio::test]
async fn resuming_without_a_gap_sends_only_what_was_missed() {
    let server = many(3).await;
    let mut client = connect(&server).await;
    let mut fleet = Fleet::default();
    {
        let mut stream = open(&mut client, "").await;
        fleet.until(&mut stream, &registered(&server)).await;
    }
    // Nothing missed: one empty, synced message says the stream is live.
    let mut stream = open(&mut client, &fleet.token).await;
    let first = next(&mut stream).await;
    assert!(
        !first.reset && first.synced && first.statuses.is_empty(),
        "{first:?}"
    );
    drop(stream);

    server.set([
        ("svc-00001", ServingStatus::NotServing),
        ("svc-00001", ServingStatus::Serving),
    ]);
    server.registry.remove("svc-00002").unwrap();
    let mut stream = open(&mut client, &fleet.token).await;
    let first = next(&mut stream).await;
    assert!(!first.reset && first.synced, "{first:?}");
    let missed: Vec<_> = first
        .statuses
        .iter()
        .map(|s| (s.service.as_str(), status_of(s.status)))
        .collect();
    assert_eq!(
        missed,
        [
            ("svc-00001", ServingStatus::NotServing),
            ("svc-00001", ServingStatus::Serving),
            ("svc-00002", ServingStatus::ServiceUnknown),
        ]
    );
    fleet.apply(first);
    assert_eq!(fleet.statuses, registered(&server));
    assert_eq!(fleet.resets, 1);
}

#[tokio::test]
async fn resuming_after_a_gap_or_a_restart_starts_over_with_a_snapshot() {
    let server = TestServer::with(|s| s.health.watch_all_backlog = 4).await;
    server.registry.set("a", ServingStatus::Serving).unwrap();
    let mut client = connect(&server).await;
    let mut fleet = Fleet::default();
    {
        let mut stream = open(&mut client, "").await;
        fleet.until(&mut stream, &registered(&server)).await;
    }
    server.set((0..5).map(|i| (format!("b{i}"), ServingStatus::Serving)));
    let mut stream = open(&mut client, &fleet.token).await;
    let first = next(&mut stream).await;
    assert!(first.reset, "5 changes missed, 4 remembered: {first:?}");
    fleet.apply(first);
    assert_eq!(fleet.statuses, registered(&server));
    assert_eq!(fleet.resets, 2);

    // Another server (as after a restart) knows nothing of this token.
    let other = many(1).await;
    let mut client = connect(&other).await;
    let mut stream = open(&mut client, &fleet.token).await;
    let first = next(&mut stream).await;
    assert!(first.reset && first.synced, "{first:?}");
    let names: Vec<_> = first.statuses.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(names, ["", "svc-00000"]);
}

#[tokio::test]
async fn a_token_no_healthweb_gives_out_is_refused_with_a_reason() {
    let server = TestServer::start().await;
    let mut client = connect(&server).await;
    let request = WatchAllRequest {
        resume_token: "yesterday".into(),
    };
    let err = within(client.watch_all(request)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("\"yesterday\""), "{}", err.message());
    assert!(err.message().contains("snapshot"), "{}", err.message());
}

#[tokio::test]
async fn a_client_that_stops_reading_gets_a_snapshot_not_a_queue() {
    const SERVICES: usize = 100;
    const FLIPS: usize = 50_000;
    let server = TestServer::with(|s| s.health.watch_all_backlog = 1000).await;
    server.set((0..SERVICES).map(|i| (format!("s{i}"), ServingStatus::Serving)));
    let mut client = connect(&server).await;
    let mut stream = open(&mut client, "").await;
    let mut fleet = Fleet::default();
    fleet.until(&mut stream, &registered(&server)).await;
    // The client reads nothing while 50,000 changes are made.
    for i in 0..FLIPS {
        let status = if i % 3 == 0 {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        server
            .registry
            .set(&format!("s{}", i % SERVICES), status)
            .unwrap();
    }
    // Reading again, it gets what the transport held (16 KiB windows), then a
    // new snapshot: never the 50,000 changes.
    let before = fleet.received;
    fleet.until(&mut stream, &registered(&server)).await;
    let received = fleet.received - before;
    assert!(fleet.resets >= 2, "no new snapshot: {received} statuses");
    assert!(
        received < FLIPS / 4,
        "{received} statuses reached a client that read nothing while {FLIPS} changes were made"
    );
    // And it is live again.
    server.registry.set("s1", ServingStatus::Unknown).unwrap();
    fleet.until(&mut stream, &registered(&server)).await;
}

/// Every message of a gRPC-Web answer, decoded.
fn decoded(reply: &crate::util::WebReply) -> Vec<WatchAllResponse> {
    reply
        .messages
        .iter()
        .map(|m| WatchAllResponse::decode(m.clone()).unwrap())
        .collect()
}

#[tokio::test]
async fn over_grpc_web_in_every_mode_snapshot_change_and_resume() {
    let server = many(1500).await;
    for mode in MODES {
        let registry = server.registry.clone();
        // The change comes once the stream is open, whatever the machine's speed.
        let flip = tokio::spawn(async move {
            within(async {
                while registry.followers() == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
            let now = registry.check("svc-00001").unwrap();
            let next = if now == ServingStatus::Serving {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            };
            registry.set("svc-00001", next).unwrap();
        });
        let request = frame(&WatchAllRequest::default());
        let (_, reply) =
            call_path(&server, mode, WATCH_ALL, request, &[("grpc-timeout", "2S")]).await;
        flip.await.unwrap();
        assert_eq!(
            reply.grpc_status(),
            Some("4"),
            "{mode:?}: DEADLINE_EXCEEDED"
        );
        let messages = decoded(&reply);
        let mut fleet = Fleet::default();
        for message in messages {
            fleet.apply(message);
        }
        assert_eq!(fleet.statuses, registered(&server), "{mode:?}");
        assert_eq!(fleet.resets, 1, "{mode:?}");
        assert_eq!(
            fleet.received,
            1501 + 1,
            "{mode:?}: the snapshot and the change"
        );

        // Resumed: only the change made meanwhile, no snapshot.
        server
            .registry
            .set("later", ServingStatus::Serving)
            .unwrap();
        let request = frame(&WatchAllRequest {
            resume_token: fleet.token.clone(),
        });
        let (_, reply) =
            call_path(&server, mode, WATCH_ALL, request, &[("grpc-timeout", "1S")]).await;
        let messages = decoded(&reply);
        assert_eq!(messages.len(), 1, "{mode:?}: {messages:?}");
        assert!(!messages[0].reset && messages[0].synced);
        assert_eq!(messages[0].statuses.len(), 1);
        assert_eq!(messages[0].statuses[0].service, "later");
        server.registry.remove("later").unwrap();
        within(async {
            while server.registry.followers() != 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}
