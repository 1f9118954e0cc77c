//! healthweb against the reference, answer by answer: the same requests, byte for
//! byte, to healthweb and to what a Rust user would run without it (tonic-health
//! behind tonic-web on tonic's own server, as the bench's `tonic-default`), compared
//! field by field: HTTP status, content type, where the status came (headers or
//! trailers), grpc-status, grpc-message, every message's bytes, the other trailers,
//! and whether the answer ended.
//!
//! The matrix: Check, Watch and List, over the five wires (native gRPC over HTTP/2,
//! gRPC-Web binary and text over HTTP/1.1 and HTTP/2), for a registered, an unknown
//! and the `""` service, and for bodies that are oversize, malformed, truncated,
//! flagged compressed without `grpc-encoding`, in padded gRPC-Web text chunks, or
//! followed by request trailers; a Watch ended by its `grpc-timeout`; a Watch open
//! when the server drains and one opened during the drain.
//!
//! Every difference must be one of [`KNOWN`], each with its reason, and each of
//! those must still occur and be listed in ARCHITECTURE.md, so the list stays true.

use std::{collections::BTreeMap, convert::Infallible, net::SocketAddr, time::Duration};

use bytes::Bytes;
use futures_util::{StreamExt, future::join_all};
use healthweb_proto::{
    pb::{HealthCheckRequest, HealthListRequest},
    wire::{self, Framing},
};
use healthweb_server::{
    Settings,
    history::{History, Location},
    metrics::Metrics,
    routes, serve,
    web::{Instance, WebState},
};
use http::{Method, Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::util::{Http, LIMIT, TestServer, WebDecoder, within};

/// One of the five wires a call can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wire {
    framing: Framing,
    http: Http,
}

const WIRES: [Wire; 5] = [
    Wire {
        framing: Framing::Grpc,
        http: Http::H2,
    },
    Wire {
        framing: Framing::Web,
        http: Http::H1,
    },
    Wire {
        framing: Framing::Web,
        http: Http::H2,
    },
    Wire {
        framing: Framing::WebText,
        http: Http::H1,
    },
    Wire {
        framing: Framing::WebText,
        http: Http::H2,
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    Check,
    Watch,
    List,
}

impl Rpc {
    fn path(self) -> &'static str {
        match self {
            Self::Check => wire::path::CHECK,
            Self::Watch => wire::path::WATCH,
            Self::List => wire::path::LIST,
        }
    }

    /// An encoded request for `service` (List takes none).
    fn request(self, service: &str) -> Vec<u8> {
        match self {
            Self::List => HealthListRequest {}.encode_to_vec(),
            _ => HealthCheckRequest {
                service: service.into(),
            }
            .encode_to_vec(),
        }
    }
}

/// How long to read an answer.
#[derive(Debug, Clone, Copy)]
enum Read {
    /// To its end.
    ToEnd,
    /// To its end, or for this long.
    For(Duration),
    /// To its end, or until nothing more has come for a while after the first
    /// message (a Watch that stays open).
    Settle,
}

/// How long a stream must stay quiet to count as settled. Generous: a server on a
/// busy machine may be slow to send what follows a first message, and a stream that
/// ends late must not be taken for one that stays open.
const QUIET: Duration = Duration::from_secs(2);

/// One request, as the bytes of its body (binary; text wires encode them unless
/// `text` gives the exact text).
#[derive(Debug, Clone)]
struct Case {
    name: &'static str,
    rpc: Rpc,
    /// The body's chunks, as sent in binary framing.
    chunks: Vec<Vec<u8>>,
    /// The body's chunks as gRPC-Web text, exactly (text wires only).
    text: Option<Vec<&'static str>>,
    trailers: Vec<(&'static str, &'static str)>,
    headers: Vec<(&'static str, &'static str)>,
    read: Read,
    /// Told once the answer's first message is in.
    first: Option<mpsc::UnboundedSender<()>>,
}

impl Case {
    fn new(name: &'static str, rpc: Rpc, body: Vec<u8>) -> Self {
        Self {
            name,
            rpc,
            chunks: vec![body],
            text: None,
            trailers: Vec::new(),
            headers: Vec::new(),
            read: match rpc {
                Rpc::Watch => Read::Settle,
                _ => Read::ToEnd,
            },
            first: None,
        }
    }

    fn call(name: &'static str, rpc: Rpc, service: &str) -> Self {
        Self::new(name, rpc, wire::message_frame(&rpc.request(service)))
    }
}

/// The matrix of requests, for one wire.
fn cases(framing: Framing) -> Vec<Case> {
    let mut cases = Vec::new();
    for (rpc, prefix) in [
        (Rpc::Check, "check"),
        (Rpc::Watch, "watch"),
        (Rpc::List, "list"),
    ] {
        let named = |suffix: &str| -> &'static str { format!("{prefix}/{suffix}").leak() };
        if rpc == Rpc::List {
            cases.push(Case::call(named("all"), rpc, ""));
        } else {
            cases.push(Case::call(named("registered"), rpc, "registered"));
            cases.push(Case::call(named("unknown"), rpc, "unknown"));
            cases.push(Case::call(named("server"), rpc, ""));
        }
        // 20,000 bytes of service name: past both servers' 16 KiB message limit.
        let oversize = HealthCheckRequest {
            service: "x".repeat(20_000),
        };
        cases.push(Case::new(
            named("oversize"),
            rpc,
            wire::message_frame(&oversize.encode_to_vec()),
        ));
        // Field 1, length-delimited, 5 bytes long, of which 1 is there.
        cases.push(Case::new(
            named("malformed"),
            rpc,
            wire::message_frame(&[0x0a, 5, b'a']),
        ));
        // A frame that says 10 bytes, then the body ends after 3.
        let mut truncated = wire::message_frame(&[0; 10]);
        truncated.truncate(wire::HEADER_LEN + 3);
        cases.push(Case::new(named("truncated"), rpc, truncated));
        cases.push(Case::new(
            named("compressed-flag"),
            rpc,
            wire::frame(wire::COMPRESSED, &rpc.request("registered")),
        ));
        let mut trailers = Case::call(named("request-trailers"), rpc, "registered");
        trailers.trailers = vec![("x-request-trailer", "1")];
        cases.push(trailers);
        let mut split = Case::call(named("split-body"), rpc, "registered");
        let body = split.chunks.remove(0);
        split.chunks = body.chunks(2).map(<[u8]>::to_vec).collect();
        cases.push(split);
        if framing == Framing::WebText {
            // Check("") in two pieces, each padded on its own: tonic-web takes text
            // only in whole base64, so both answer INTERNAL alike.
            let mut padded = Case::call(named("text-padded-pieces"), rpc, "");
            padded.text = Some(vec!["AA==AAAAAA=="]);
            cases.push(padded);
            // The same body cut mid-quantum across HTTP chunks: valid, and answered.
            let mut cut = Case::call(named("text-cut-chunks"), rpc, "");
            cut.text = Some(vec!["AAA", "AAAA="]);
            cases.push(cut);
        }
    }
    let mut deadline = Case::call("watch/grpc-timeout", Rpc::Watch, "registered");
    deadline.headers = vec![("grpc-timeout", "300m")];
    // Long past the deadline, even on a busy machine: the reference never ends it.
    deadline.read = Read::For(Duration::from_secs(5));
    cases.push(deadline);
    cases
}

/// What a client sees of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    http_status: Option<u16>,
    content_type: Option<String>,
    /// The status came in the headers (a trailers-only answer).
    trailers_only: bool,
    grpc_status: Option<String>,
    grpc_message: Option<String>,
    messages: Vec<Vec<u8>>,
    /// Trailers besides grpc-status and grpc-message.
    trailers: BTreeMap<String, String>,
    /// The answer ended (rather than staying open, or breaking).
    ended: bool,
    /// The transport broke instead (a reset stream, a closed connection).
    broken: Option<String>,
}

impl Answer {
    /// The fields, by name, as text.
    fn fields(&self) -> [(&'static str, String); 9] {
        [
            ("http status", format!("{:?}", self.http_status)),
            ("content type", format!("{:?}", self.content_type)),
            ("trailers-only", self.trailers_only.to_string()),
            ("grpc-status", format!("{:?}", self.grpc_status)),
            ("grpc-message", format!("{:?}", self.grpc_message)),
            ("messages", format!("{:02x?}", self.messages)),
            ("trailers", format!("{:?}", self.trailers)),
            ("ended", self.ended.to_string()),
            ("broken", format!("{:?}", self.broken)),
        ]
    }
}

/// The fields where `ours` and `reference` differ.
fn differences(ours: &Answer, reference: &Answer) -> Vec<(&'static str, String, String)> {
    ours.fields()
        .into_iter()
        .zip(reference.fields())
        .filter(|((_, a), (_, b))| a != b)
        .map(|((field, a), (_, b))| (field, a, b))
        .collect()
}

type Body = BoxBody<Bytes, Infallible>;

/// Sends `case` over `wire` to `addr` and reads what comes back.
async fn call(addr: SocketAddr, wire: Wire, case: &Case) -> Answer {
    let framing = wire.framing;
    let chunks: Vec<Bytes> = match (framing, &case.text) {
        (Framing::WebText, Some(text)) => text.iter().map(|t| Bytes::from(*t)).collect(),
        (Framing::WebText, None) => {
            // Each chunk in base64, padded on its own, as a gRPC-Web client flushes it.
            case.chunks
                .iter()
                .map(|c| Bytes::from(wire::text_encode(c)))
                .collect()
        }
        _ => case.chunks.iter().map(|c| Bytes::from(c.clone())).collect(),
    };
    let mut frames: Vec<Result<Frame<Bytes>, Infallible>> =
        chunks.into_iter().map(|c| Ok(Frame::data(c))).collect();
    if !case.trailers.is_empty() {
        let mut trailers = http::HeaderMap::new();
        for (name, value) in &case.trailers {
            trailers.insert(*name, value.parse().unwrap());
        }
        frames.push(Ok(Frame::trailers(trailers)));
    }
    let body: Body = BodyExt::boxed(StreamBody::new(futures_util::stream::iter(frames)));
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}{}", case.rpc.path()))
        .header("content-type", framing.content_type())
        .header("te", "trailers");
    if framing.is_web() {
        request = request
            .header("accept", framing.content_type())
            .header("x-grpc-web", "1");
    }
    for (name, value) in &case.headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body).unwrap();
    let mut client = Client::builder(TokioExecutor::new());
    if wire.http == Http::H2 {
        client.http2_only(true);
    }
    let client = client.build_http::<Body>();
    match within(client.request(request)).await {
        Ok(response) => read(response, framing, case).await,
        Err(error) => Answer {
            http_status: None,
            content_type: None,
            trailers_only: false,
            grpc_status: None,
            grpc_message: None,
            messages: Vec::new(),
            trailers: BTreeMap::new(),
            ended: false,
            broken: Some(kind_of(&error)),
        },
    }
}

/// A transport error, as a kind rather than its words (which carry addresses).
fn kind_of(error: &dyn std::error::Error) -> String {
    let text = error.to_string();
    let mut source = error.source();
    let mut kinds = vec![text.split(':').next().unwrap_or("").to_owned()];
    while let Some(inner) = source {
        kinds.push(inner.to_string().split(':').next().unwrap_or("").to_owned());
        source = inner.source();
    }
    kinds.join(" / ")
}

async fn read(response: Response<hyper::body::Incoming>, framing: Framing, case: &Case) -> Answer {
    let mode = case.read;
    let mut first = case.first.clone();
    let (parts, mut body) = response.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(not text)").to_owned())
    };
    let mut answer = Answer {
        http_status: Some(parts.status.as_u16()),
        content_type: header("content-type"),
        trailers_only: parts.headers.contains_key("grpc-status"),
        grpc_status: header("grpc-status"),
        grpc_message: header("grpc-message"),
        messages: Vec::new(),
        trailers: BTreeMap::new(),
        ended: false,
        broken: None,
    };
    let mut decoder = WebDecoder::new(framing == Framing::WebText);
    let mut trailer_fields = Vec::new();
    let end = tokio::time::Instant::now()
        + match mode {
            Read::For(limit) => limit,
            _ => LIMIT,
        };
    loop {
        let wait = match mode {
            Read::Settle if !answer.messages.is_empty() => QUIET,
            _ => end.saturating_duration_since(tokio::time::Instant::now()),
        };
        let frame = match tokio::time::timeout(wait, body.frame()).await {
            Err(_) => break,
            Ok(None) => {
                answer.ended = true;
                break;
            }
            Ok(Some(Err(error))) => {
                answer.broken = Some(kind_of(&error));
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        match frame.into_data() {
            Ok(data) => {
                decoder.push(&data);
                while let Some(message) = decoder.next_message() {
                    answer.messages.push(message);
                }
                if !answer.messages.is_empty()
                    && let Some(first) = first.take()
                {
                    let _ = first.send(());
                }
            }
            Err(frame) => {
                if let Some(trailers) = frame.trailers_ref() {
                    trailer_fields.extend(trailers.iter().map(|(name, value)| {
                        (
                            name.as_str().to_owned(),
                            value.to_str().unwrap_or("(not text)").to_owned(),
                        )
                    }));
                }
            }
        }
    }
    // A trailer frame in the body comes before any HTTP trailers.
    for (name, value) in decoder.trailers.into_iter().chain(trailer_fields) {
        match name.as_str() {
            "grpc-status" => answer.grpc_status = Some(value),
            "grpc-message" => answer.grpc_message = Some(value),
            _ => {
                answer.trailers.insert(name, value);
            }
        }
    }
    answer
}

/// The reference: tonic-health behind tonic-web on tonic's server, as the bench's
/// `tonic-default`, with healthweb's message limit. Its services are set by `set`.
struct Reference {
    addr: SocketAddr,
    reporter: tonic_health::server::HealthReporter,
    _stop: tokio_util::sync::DropGuard,
}

impl Reference {
    async fn start() -> Self {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("registered", tonic_health::ServingStatus::Serving)
            .await;
        let health = health.max_decoding_message_size(Settings::default().max_request_message);
        let incoming =
            tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = incoming.local_addr().unwrap();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(
            tonic::transport::Server::builder()
                .accept_http1(true)
                .layer(tonic_web::GrpcWebLayer::new())
                .add_service(health)
                .serve_with_incoming_shutdown(incoming, stopped.cancelled_owned()),
        );
        Self {
            addr,
            reporter,
            _stop: stop.drop_guard(),
        }
    }
}

/// healthweb with the same services.
async fn healthweb() -> TestServer {
    let server = TestServer::start().await;
    server
        .registry
        .set(
            "registered",
            healthweb_proto::pb::health_check_response::ServingStatus::Serving,
        )
        .unwrap();
    server
}

/// A difference healthweb means to make, and why.
struct Known {
    /// The case (`rpc/what`); a trailing `*` matches a prefix.
    case: &'static str,
    /// The field that differs.
    field: &'static str,
    why: &'static str,
}

const KNOWN: &[Known] = &[
    Known {
        case: "check/unknown",
        field: "grpc-message",
        why: "NOT_FOUND names the service (`unknown service \"unknown\"`); tonic-health says \
              `service not registered`",
    },
    Known {
        case: "watch/unknown",
        field: "*",
        why: "the health spec: Watch of an unknown service answers SERVICE_UNKNOWN and stays \
              open, to tell when it is registered; tonic-health fails it with NOT_FOUND",
    },
    Known {
        case: "list/*",
        field: "*",
        why: "tonic-health 0.14 has no List (added to the spec in 2024) and answers \
              UNIMPLEMENTED; healthweb serves it",
    },
    Known {
        case: "*/oversize",
        field: "grpc-status",
        why: "a message over the limit is RESOURCE_EXHAUSTED, as the status-code spec, \
              grpc-go and grpc-java say; tonic answers OUT_OF_RANGE",
    },
    Known {
        case: "watch/grpc-timeout",
        field: "*",
        why: "grpc-timeout bounds the whole call: a Watch ends with DEADLINE_EXCEEDED; \
              tonic's server times only the wait for the answer's headers, so its Watch \
              stays open",
    },
    Known {
        case: "watch/drain*",
        field: "*",
        why: "healthweb ends open Watch streams with UNAVAILABLE when it drains, and a Watch \
              opened during the drain gets its status and UNAVAILABLE, so clients reconnect \
              elsewhere; tonic-health has no drain and keeps them open",
    },
];

fn known(case: &str, field: &str) -> Option<&'static Known> {
    let matches = |pattern: &str, text: &str| match pattern.split_once('*') {
        Some((head, tail)) => text.starts_with(head) && text.ends_with(tail),
        None => pattern == text,
    };
    KNOWN
        .iter()
        .find(|k| matches(k.case, case) && (k.field == "*" || k.field == field))
}

/// Runs every case over every wire against both servers, and returns each
/// difference as (case, wire, field, healthweb's, the reference's).
async fn run_matrix(
    ours: SocketAddr,
    reference: SocketAddr,
) -> Vec<(String, Wire, &'static str, String, String)> {
    let calls = WIRES.iter().flat_map(|&wire| {
        cases(wire.framing).into_iter().map(move |case| async move {
            let (a, b) = tokio::join!(call(ours, wire, &case), call(reference, wire, &case));
            (case.name, wire, a, b)
        })
    });
    let mut found = Vec::new();
    // In groups, so a busy machine is not asked for hundreds of calls at once.
    let mut calls = futures_util::stream::iter(calls).buffer_unordered(16);
    while let Some((name, wire, a, b)) = calls.next().await {
        for (field, ours, theirs) in differences(&a, &b) {
            found.push((name.to_owned(), wire, field, ours, theirs));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_reference_or_a_known_difference() {
    let ours = healthweb().await;
    let reference = Reference::start().await;
    let mut found = run_matrix(ours.addr, reference.addr).await;
    found.extend(drain_differences().await);

    let unexplained: Vec<_> = found
        .iter()
        .filter(|(case, _, field, _, _)| known(case, field).is_none())
        .collect();
    assert!(
        unexplained.is_empty(),
        "answers that differ from the reference with no reason in KNOWN:\n{}",
        unexplained
            .iter()
            .map(|(case, wire, field, a, b)| format!(
                "{case} over {wire:?}: {field}: healthweb {a}, reference {b}"
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let architecture =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../ARCHITECTURE.md"))
            .unwrap();
    for k in KNOWN {
        assert!(
            found
                .iter()
                .any(|(case, _, field, _, _)| known(case, field).is_some_and(|f| f.case == k.case)),
            "KNOWN lists {} but no answer differs there any more: take it out",
            k.case
        );
        assert!(
            architecture.contains(&format!("`{}`", k.case)),
            "ARCHITECTURE.md does not list the difference `{}` ({})",
            k.case,
            k.why
        );
    }
}

/// A Watch open when the server drains, and one opened during the drain, on each
/// wire. healthweb's drain is `HealthRegistry::end_streams` (what `Server::run`
/// calls after the drain delay), called here while the port stays open so that a
/// Watch can still be opened; the reference's is what a tonic-health user does at shutdown,
/// setting NOT_SERVING.
async fn drain_differences() -> Vec<(String, Wire, &'static str, String, String)> {
    let mut settings = Settings::default();
    settings.history.location = Location::Memory;
    let registry = healthweb_server::HealthRegistry::new();
    registry
        .set(
            "registered",
            healthweb_proto::pb::health_check_response::ServingStatus::Serving,
        )
        .unwrap();
    let state = WebState {
        registry: registry.clone(),
        upstreams: Default::default(),
        history: History::memory().unwrap(),
        metrics: Metrics::new(),
        instance: Instance::default(),
        maintenance: None,
    };
    let app = routes::app(&settings, state, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ours = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    tokio::spawn(async move {
        serve::serve(
            listener,
            app,
            &settings.connections,
            None,
            stop.cancelled_owned(),
            Duration::ZERO,
        )
        .await
    });
    let reference = Reference::start().await;

    let open = |name| {
        let mut case = Case::call(name, Rpc::Watch, "registered");
        case.read = Read::Settle;
        case
    };
    let (first, mut firsts) = mpsc::unbounded_channel();
    let mut during = open("watch/drain-open-before");
    during.first = Some(first);
    let opened = open("watch/drain-opened-during");
    // Watches open on both, then the drain: NOT_SERVING everywhere, then healthweb's token.
    let theirs = reference.addr;
    let before: Vec<_> = WIRES
        .iter()
        .map(|&wire| {
            let during = during.clone();
            tokio::spawn(async move {
                tokio::join!(call(ours, wire, &during), call(theirs, wire, &during))
            })
        })
        .collect();
    // Every Watch has its first message (SERVING) before the drain begins: one
    // polled later would send NOT_SERVING alone, on one side and not the other.
    within(async {
        for _ in 0..2 * WIRES.len() {
            firsts.recv().await;
        }
    })
    .await;
    registry.shutdown();
    reference
        .reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    reference
        .reporter
        .set_service_status("registered", tonic_health::ServingStatus::NotServing)
        .await;
    registry.end_streams();
    let mut found = Vec::new();
    for (wire, answers) in WIRES.iter().zip(join_all(before).await) {
        let (a, b) = answers.unwrap();
        assert_eq!(a.grpc_status.as_deref(), Some("14"), "{wire:?}: {a:?}");
        assert!(a.ended, "{wire:?}: {a:?}");
        for (field, x, y) in differences(&a, &b) {
            found.push((during.name.to_owned(), *wire, field, x, y));
        }
    }
    let opened_now = WIRES.iter().map(|&wire| {
        let opened = &opened;
        async move {
            let answers = tokio::join!(call(ours, wire, opened), call(theirs, wire, opened));
            (wire, answers)
        }
    });
    for (wire, (a, b)) in join_all(opened_now).await {
        // Before any comparison: healthweb's own promise, whatever the reference does.
        assert_eq!(a.grpc_status.as_deref(), Some("14"), "{wire:?}: {a:?}");
        assert!(a.ended, "{wire:?}: {a:?}");
        for (field, x, y) in differences(&a, &b) {
            found.push((opened.name.to_owned(), wire, field, x, y));
        }
    }
    found
}

/// The comparison sees one changed byte: the test cannot pass whatever the answers.
#[tokio::test]
async fn one_changed_byte_is_a_difference() {
    let ours = healthweb().await;
    let wire = WIRES[3];
    let case = Case::call("check/server", Rpc::Check, "");
    let answer = call(ours.addr, wire, &case).await;
    assert_eq!(answer.messages, [vec![0x08, 0x01]], "{answer:?}");
    assert!(differences(&answer, &answer).is_empty());
    let mut changed = answer.clone();
    changed.messages[0][1] = 0x02;
    let found = differences(&changed, &answer);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "messages");
    assert!(known(case.name, found[0].0).is_none());
}
