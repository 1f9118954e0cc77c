//! Shared test harness: an in-process server on `127.0.0.1:0`, the real
//! `healthweb` binary as a child process, and a raw gRPC-Web client.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use bytes::Bytes;
use healthweb_proto::{
    pb::{
        HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
        health_client::HealthClient,
    },
    wire,
};
use healthweb_server::{HealthRegistry, Server, Settings, history::Location};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use prost::Message;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::transport::Channel;

/// Every wait in the tests is bounded by this.
/// Generous, for a slow and busy machine: only a failing test ever waits this long.
pub const LIMIT: Duration = Duration::from_secs(30);

/// A server running in this process, started the way the binary starts one.
pub struct TestServer {
    pub addr: SocketAddr,
    pub registry: HealthRegistry,
    /// Dropping the server drops this, which starts its drain.
    _stop: DropGuard,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(|_| {}).await
    }

    /// [`Self::start`], with these services registered.
    pub async fn serving<N: AsRef<str>>(
        statuses: impl IntoIterator<Item = (N, ServingStatus)>,
    ) -> Self {
        let server = Self::start().await;
        server.set(statuses);
        server
    }

    /// Sets each service's status, in order.
    pub fn set<N: AsRef<str>>(&self, statuses: impl IntoIterator<Item = (N, ServingStatus)>) {
        for (name, status) in statuses {
            self.registry.set(name.as_ref(), status).unwrap();
        }
    }

    /// Serves the default settings after `change`, on `127.0.0.1:0`, with history
    /// in memory unless `change` names a file.
    pub async fn with(change: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = Settings::default();
        settings.history.location = Location::Memory;
        change(&mut settings);
        settings.listen = "127.0.0.1:0".parse().unwrap();
        let server = Server::new(settings).await.unwrap();
        let listeners = server.bind().await.unwrap();
        let addr = listeners.main.local_addr().unwrap();
        let registry = server.registry().clone();
        let stop = CancellationToken::new();
        tokio::spawn(server.run(listeners, stop.clone()));
        Self {
            addr,
            registry,
            _stop: stop.drop_guard(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self) -> HealthClient<Channel> {
        client(&self.url()).await
    }
}

pub async fn client(url: &str) -> HealthClient<Channel> {
    let channel = Channel::from_shared(url.to_owned())
        .unwrap()
        .connect_timeout(LIMIT)
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

pub fn req(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.into(),
    }
}

pub fn status_of(status: i32) -> ServingStatus {
    ServingStatus::try_from(status).unwrap()
}

/// The status in a `HealthCheckResponse` message's bytes.
pub fn status_in(message: &[u8]) -> ServingStatus {
    status_of(HealthCheckResponse::decode(message).unwrap().status)
}

/// Awaits `future` for at most [`LIMIT`].
pub async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("timed out")
}

/// The whole lines a child writes to `pipe`, as they come: a reader thread
/// hands over only complete lines, never a line cut where a pipe read ended.
pub fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Everything already received, for a failure message.
pub fn drain(lines: &mpsc::Receiver<String>) -> Vec<String> {
    lines.try_iter().collect()
}

/// The real `healthweb` binary, killed when dropped.
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub stderr: mpsc::Receiver<String>,
    /// What it printed before its address.
    pub before: Vec<String>,
}

impl Binary {
    /// Runs `healthweb serve --listen 127.0.0.1:0 ARGS` and waits for its address;
    /// history stays in memory unless ARGS name a `--history` file.
    pub fn serve(args: &[&str]) -> Self {
        let history: &[&str] = if args.contains(&"--history") {
            &[]
        } else {
            &["--history", "memory"]
        };
        Self::serve_with(&[history, args].concat(), |_| {})
    }

    /// Runs `healthweb serve --listen 127.0.0.1:0 ARGS`, its command changed by
    /// `configure` first (environment, working directory, user), and waits for
    /// its address.
    pub fn serve_with(args: &[&str], configure: impl FnOnce(&mut Command)) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_healthweb"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("HEALTHWEB_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        configure(&mut command);
        let mut child = command.spawn().unwrap();
        let stderr = lines(child.stderr.take().unwrap());
        let mut binary = Self {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            admin: None,
            stderr,
            before: Vec::new(),
        };
        let want_admin = args.contains(&"--admin-listen");
        let addr_of = |line: &str, prefix: &str| -> Option<SocketAddr> {
            line.strip_prefix(prefix)?.parse().ok()
        };
        let mut seen = Vec::new();
        while binary.addr.port() == 0 || (want_admin && binary.admin.is_none()) {
            let line = binary.stderr.recv_timeout(LIMIT).unwrap_or_else(|_| {
                panic!("healthweb printed no address within {LIMIT:?}; its stderr: {seen:#?}")
            });
            if let Some(addr) = addr_of(&line, "listening on http://")
                .or_else(|| addr_of(&line, "listening on https://"))
            {
                binary.addr = addr;
            } else if let Some(addr) = addr_of(&line, "admin listening on http://") {
                binary.admin = Some(addr);
            }
            seen.push(line);
        }
        binary.before = seen;
        binary
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its resident memory (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits until stderr has a line containing `needle`.
    pub fn wait_for_log(&self, needle: &str) -> String {
        loop {
            let line = self
                .stderr
                .recv_timeout(LIMIT)
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the real `healthweb` with `args` and returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    run_cli_env(args, &[])
}

/// [`run_cli`] with extra environment variables. A run still going after [`LIMIT`]
/// is killed and fails the test: no command may hang.
pub fn run_cli_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_healthweb"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("healthweb {args:?} still ran after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status.code().unwrap_or(-1),
        stdout.join().unwrap(),
        stderr.join().unwrap(),
    )
}

/// Which HTTP a raw request travels over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Http {
    H1,
    H2,
}

/// A raw HTTP response: status, headers, the whole body.
pub struct Raw {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Sends one HTTP request with `body` and collects the whole response.
pub async fn raw(
    http: Http,
    url: &str,
    method: http::Method,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Raw {
    collect(send(http, request(method, url, headers, body)).await).await
}

/// A request with these headers and `body`.
fn request(
    method: http::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> http::Request<Full<Bytes>> {
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Full::new(body.into())).unwrap()
}

/// Sends `request`; returns once the response's head arrives, so a streaming
/// call (Watch) is known to be open.
pub async fn send(
    http: Http,
    request: http::Request<Full<Bytes>>,
) -> http::Response<hyper::body::Incoming> {
    let mut builder = Client::builder(TokioExecutor::new());
    if http == Http::H2 {
        builder.http2_only(true);
    }
    let client = builder.build_http::<Full<Bytes>>();
    let response = within(client.request(request)).await.unwrap();
    assert_eq!(
        response.version(),
        match http {
            Http::H1 => http::Version::HTTP_11,
            Http::H2 => http::Version::HTTP_2,
        }
    );
    response
}

/// `GET url` over HTTP/1.1, which must answer 200: its body, as text.
pub async fn get_ok(url: &str) -> String {
    let r = raw(Http::H1, url, http::Method::GET, &[], "").await;
    assert_eq!(r.status, 200, "GET {url}");
    String::from_utf8_lossy(&r.body).into_owned()
}

/// What the server at `url` says of itself (`GET /instance`).
pub async fn instance(url: &str) -> serde_json::Value {
    serde_json::from_str(&get_ok(&format!("{url}/instance")).await).unwrap()
}

/// Reads the rest of a response.
pub async fn collect(response: http::Response<hyper::body::Incoming>) -> Raw {
    let (parts, body) = response.into_parts();
    let body = within(body.collect()).await.unwrap().to_bytes();
    Raw {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// A gRPC-Web call's result, decoded: messages and trailers.
#[derive(Debug)]
pub struct WebReply {
    pub messages: Vec<Bytes>,
    pub trailers: Vec<(String, String)>,
}

impl WebReply {
    /// The grpc-status, from the trailer frame or, for a trailers-only reply, the headers.
    pub fn grpc_status(&self) -> Option<&str> {
        self.trailer("grpc-status")
    }

    /// Its messages, each a `HealthCheckResponse`: their statuses.
    pub fn statuses(&self) -> Vec<ServingStatus> {
        self.messages.iter().map(|m| status_in(m)).collect()
    }

    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Frames a protobuf message for gRPC(-Web): flag byte, big-endian length, bytes.
pub fn frame(message: &impl Message) -> Bytes {
    wire::message_frame(&message.encode_to_vec()).into()
}

/// One unary call at `url` as a browser makes it (gRPC-Web binary, HTTP/1.1): the
/// call must end with grpc-status 0; its first message, decoded.
pub async fn web_unary<M: Message + Default>(url: &str, request: &impl Message) -> M {
    let reply = decode_web(
        &raw(
            Http::H1,
            url,
            http::Method::POST,
            &[("content-type", "application/grpc-web+proto")],
            frame(request),
        )
        .await,
    );
    assert_eq!(reply.grpc_status(), Some("0"), "{reply:?}");
    M::decode(reply.messages[0].clone()).unwrap()
}

/// Splits a gRPC-Web body into its messages and trailers.
pub fn decode_web(raw: &Raw) -> WebReply {
    let mut decoder = WebDecoder::of_answer(&raw.headers);
    decoder.push(&raw.body);
    let mut messages = Vec::new();
    while let Some(message) = decoder.next_message() {
        messages.push(message.into());
    }
    decoder.finish(messages)
}

/// Decodes a gRPC or gRPC-Web body as its bytes come in: base64 first if it is
/// gRPC-Web text, then the frames. A trailer frame's fields are kept in `trailers`.
pub struct WebDecoder {
    text: Option<wire::TextDecoder>,
    frames: wire::FrameDecoder,
    pub trailers: Vec<(String, String)>,
}

impl WebDecoder {
    /// `text`: the body is gRPC-Web text.
    pub fn new(text: bool) -> Self {
        Self {
            text: text.then(wire::TextDecoder::default),
            frames: wire::FrameDecoder::default(),
            trailers: Vec::new(),
        }
    }

    /// For the gRPC-Web answer with these headers: its trailers start with any
    /// `grpc-status` and `grpc-message` the headers carry (a trailers-only answer).
    fn of_answer(headers: &http::HeaderMap) -> Self {
        let ct = headers[http::header::CONTENT_TYPE].to_str().unwrap();
        let mut decoder = Self::new(wire::Framing::of(ct) == Some(wire::Framing::WebText));
        decoder.trailers = ["grpc-status", "grpc-message"]
            .iter()
            .filter_map(|name| {
                let value = headers.get(*name)?.to_str().ok()?;
                Some((name.to_string(), value.to_owned()))
            })
            .collect();
        decoder
    }

    pub fn push(&mut self, chunk: &[u8]) {
        match &mut self.text {
            Some(text) => self
                .frames
                .push(&text.push(chunk).expect("the answer's base64")),
            None => self.frames.push(chunk),
        }
    }

    /// The next whole message in what has come so far; trailer frames on the way
    /// are kept.
    pub fn next_message(&mut self) -> Option<Vec<u8>> {
        while let Some(frame) = self.frames.next_frame() {
            match frame {
                wire::Frame::Message { bytes, .. } => return Some(bytes),
                wire::Frame::Trailers(block) => self.trailers.extend(block),
            }
        }
        None
    }

    /// The reply, once the body has ended: nothing may be left half-read.
    fn finish(self, messages: Vec<Bytes>) -> WebReply {
        assert_eq!(self.frames.pending(), 0, "trailing bytes in gRPC-Web body");
        if let Some(text) = &self.text {
            assert!(text.is_whole(), "gRPC-Web text ends mid-quantum");
        }
        WebReply {
            messages,
            trailers: self.trailers,
        }
    }
}

/// A gRPC-Web answer read as it arrives, so that a test can act between two
/// messages of a Watch: a change made once the first message is in cannot be
/// folded into it.
pub struct WebStream {
    body: hyper::body::Incoming,
    decoder: WebDecoder,
}

impl WebStream {
    /// POSTs a gRPC-Web call; returns once the answer's head has arrived.
    pub async fn open(
        http: Http,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Self {
        let response = send(http, request(http::Method::POST, url, headers, body)).await;
        assert_eq!(response.status(), 200);
        let decoder = WebDecoder::of_answer(response.headers());
        Self {
            body: response.into_body(),
            decoder,
        }
    }

    /// The next message, waiting for it if need be; `None` once the body has ended.
    pub async fn message(&mut self) -> Option<Bytes> {
        loop {
            if let Some(message) = self.decoder.next_message() {
                return Some(message.into());
            }
            let frame = within(self.body.frame()).await?.expect("body");
            if let Ok(data) = frame.into_data() {
                self.decoder.push(&data);
            }
        }
    }

    /// Reads to the end: the messages not taken yet, and the trailers.
    pub async fn finish(mut self) -> WebReply {
        let mut messages = Vec::new();
        while let Some(message) = self.message().await {
            messages.push(message);
        }
        self.decoder.finish(messages)
    }
}
