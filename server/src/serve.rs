//! The accept loop: HTTP/1.1 and HTTP/2 on one port, cleartext (h2c) or TLS,
//! with every connection on a clock, and a bounded graceful drain.
//!
//! hyper is driven directly (rather than through `tonic::transport::Server` or
//! `axum::serve`) because neither exposes every limit this server sets. Each
//! connection is watched by its own task (see [`Conn`]):
//! - it must complete its first request (TLS handshake, protocol choice, HTTP/1.1
//!   headers, or the HTTP/2 preface and first HEADERS) within the header-read
//!   timeout, or it is closed;
//! - with no request or stream open for the idle timeout, counted from the moment
//!   it was set up or its last answer ended, it is closed (HTTP/2 with GOAWAY), as
//!   grpc-go's `MaxConnectionIdle`; an open Watch stream is never idle;
//! - HTTP/2 PINGs, and TCP keepalive under HTTP/1.1, find peers that vanished;
//! - at the connection cap, the oldest connection with nothing in flight gives way
//!   to the new one, so a probe is answered even when idle or silent sockets hold
//!   every slot; only when every connection has a request in flight do new ones
//!   wait in the listen backlog;
//! - an HTTP/1.1 request refused before its body was read has the rest of its body
//!   read and discarded for a bounded time and size ([`Linger`]), so the client
//!   reads the refusal instead of a reset.

use std::{
    collections::BTreeMap,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Notify,
    time::Instant,
};
use tokio_rustls::{TlsAcceptor, rustls::ServerConfig};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::Service;

use crate::{
    routes::{AnswerBody, App},
    settings::{ConnectionLimits, Linger},
};

type Builder = auto::Builder<Streams>;

/// A connection's bytes, cleartext or TLS, as one type, so that hyper's server (HTTP/1.1
/// and HTTP/2) is built into the binary once rather than once for each.
type Io = tokio_util::either::Either<TcpStream, Box<tokio_rustls::server::TlsStream<TcpStream>>>;

fn builder(limits: &ConnectionLimits, streams: Streams) -> Builder {
    let mut builder = auto::Builder::new(streams);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    builder
}

/// Serves `app` on `listener` (over TLS when `tls` is given) until `stop`
/// completes, then stops accepting and gives open connections up to `grace` to
/// finish; whatever is left is dropped.
pub async fn serve(
    listener: TcpListener,
    app: App,
    limits: &ConnectionLimits,
    tls: Option<Arc<ServerConfig>>,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let shared = Arc::new(Shared {
        app,
        tls: tls.map(TlsAcceptor::from),
        limits: limits.clone(),
        table: Table::default(),
    });
    let draining = CancellationToken::new();
    let tasks = TaskTracker::new();

    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = shared.table.room(limits.max_connections) => {}
            () = &mut stop => break,
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let conn = shared.table.open(draining.child_token());
        tasks.spawn(shared.clone().connection(conn, stream, peer));
    }
    drop(listener);
    draining.cancel();
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::info!(?grace, "shutdown grace over; closing the connections left");
    }
}

/// What every connection task shares.
struct Shared {
    app: App,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    table: Table,
}

impl Shared {
    async fn connection(self: Arc<Self>, conn: Arc<Conn>, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        // HTTP/1.1 has no PING: the kernel's keepalive finds a vanished peer under a
        // long gRPC-Web Watch.
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(self.limits.keepalive_interval)
            .with_interval(self.limits.keepalive_interval);
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        let first_request_by = Instant::now() + self.limits.header_read_timeout;
        let io = match &self.tls {
            None => Io::Left(stream),
            Some(acceptor) => {
                match tokio::time::timeout_at(first_request_by, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => Io::Right(Box::new(stream)),
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return self.table.close(&conn);
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return self.table.close(&conn);
                    }
                }
            }
        };
        self.serve_io(&conn, io, first_request_by, peer).await;
        self.table.close(&conn);
    }

    async fn serve_io(
        &self,
        conn: &Arc<Conn>,
        io: Io,
        first_request_by: Instant,
        peer: SocketAddr,
    ) {
        let service = TowerToHyperService::new(Tracked {
            app: self.app.clone(),
            conn: conn.clone(),
            linger: self.limits.linger,
        });
        // HTTP/2 streams run inside this task, not as tasks of their own: a change
        // that wakes a thousand Watch streams of one connection wakes this task once,
        // and their frames go out in one write.
        let streams = Streams::default();
        let builder = builder(&self.limits, streams.clone());
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        // Outside tokio's budget (128 operations a poll), which would cut a change's
        // frames into 128-stream writes; one poll's work is bounded anyway, by the
        // streams a connection may have open.
        let mut running = tokio::task::unconstrained(streams.running());
        let idle = self.limits.idle_timeout;
        // Idle from the moment it was set up, as grpc-go's MaxConnectionIdle counts:
        // a connection that never asks anything is closed at the first of the two.
        let unused_by = conn.epoch + idle;
        // The clock rings at the first deadline that applies, and is set again each time.
        let clock = tokio::time::sleep_until(first_request_by.min(unused_by));
        tokio::pin!(clock);
        let mut closing = false;
        loop {
            tokio::select! {
                () = &mut running => unreachable!("the streams never finish"),
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                    return;
                }
                () = conn.close.cancelled(), if !closing => {
                    if !conn.started() {
                        // Nothing was ever asked: nothing to finish.
                        return;
                    }
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                // Before a first request the header-read deadline holds even while
                // closing, so a peer that ignores GOAWAY cannot keep the socket.
                () = clock.as_mut(), if !closing || !conn.started() => {
                    if !conn.started() {
                        let now = Instant::now();
                        if now >= first_request_by {
                            tracing::debug!(%peer, "no request within the header-read timeout; closing");
                            return;
                        }
                        if !closing && now >= unused_by {
                            tracing::debug!(%peer, "idle since it was set up; closing");
                            closing = true;
                            connection.as_mut().graceful_shutdown();
                        }
                        clock.as_mut().reset(if closing {
                            first_request_by
                        } else {
                            first_request_by.min(unused_by)
                        });
                        continue;
                    }
                    match conn.idle_since() {
                        Some(since) if since + idle <= Instant::now() => {
                            tracing::debug!(%peer, "idle; closing");
                            closing = true;
                            connection.as_mut().graceful_shutdown();
                        }
                        Some(since) => clock.as_mut().reset(since + idle),
                        None => clock.as_mut().reset(Instant::now() + idle),
                    }
                }
            }
        }
    }
}

/// One connection's state, shared by its task, its requests and the [`Table`].
struct Conn {
    id: u64,
    /// Requests and streams whose answer has not ended.
    in_flight: AtomicUsize,
    /// Whether a first request has arrived.
    started: AtomicBool,
    /// When `in_flight` last fell to zero, in milliseconds since `epoch`.
    idle_at: AtomicU64,
    /// When the connection was accepted.
    epoch: Instant,
    /// Cancelled to close the connection: the server drains, or a new one needs its slot.
    close: CancellationToken,
}

impl Conn {
    fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Since when nothing has been in flight, or `None` while something is.
    fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0)
            .then(|| self.epoch + Duration::from_millis(self.idle_at.load(Ordering::Acquire)))
    }

    /// Whether it could give way to a new connection: nothing in flight.
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }
}

/// The open connections, oldest first, for the cap.
#[derive(Default)]
struct Table {
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// Notified when a connection ends.
    closed: Notify,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        // Every critical section is one insert, remove or scan.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns once a new connection may be accepted: below the cap, or once the
    /// oldest connection with nothing in flight has been told to give way.
    async fn room(&self, max: usize) {
        loop {
            let closed = self.closed.notified();
            {
                let conns = self.lock();
                let closing = conns.values().filter(|c| c.close.is_cancelled()).count();
                if conns.len() - closing < max {
                    return;
                }
                if let Some(oldest) = conns.values().find(|c| !c.close.is_cancelled() && c.idle()) {
                    tracing::debug!(
                        id = oldest.id,
                        "at the connection cap; closing the oldest idle one"
                    );
                    oldest.close.cancel();
                    return;
                }
            }
            // Every connection is busy: wait for one to end, or to fall idle.
            let _ = tokio::time::timeout(Duration::from_millis(250), closed).await;
        }
    }

    fn open(&self, close: CancellationToken) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            in_flight: AtomicUsize::new(0),
            started: AtomicBool::new(false),
            idle_at: AtomicU64::new(0),
            epoch: Instant::now(),
            close,
        });
        self.lock().insert(conn.id, conn.clone());
        conn
    }

    fn close(&self, conn: &Conn) {
        self.lock().remove(&conn.id);
        self.closed.notify_waiters();
    }
}

/// The app as one connection sees it: it counts what is in flight and lingers
/// after HTTP/1.1 refusals.
#[derive(Clone)]
struct Tracked {
    app: App,
    conn: Arc<Conn>,
    linger: Linger,
}

impl Service<Request<Incoming>> for Tracked {
    type Response = Response<Guarded<AnswerBody>>;
    type Error = std::convert::Infallible;
    type Future = TrackedFuture<<App as Service<Request<RequestBody>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request<RequestBody>>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        self.conn.started.store(true, Ordering::Release);
        self.conn.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(self.conn.clone());
        let linger = (request.version() <= Version::HTTP_11).then_some(self.linger);
        let request = request.map(|body| RequestBody {
            body: Some(body),
            linger,
        });
        TrackedFuture {
            inner: self.app.call(request),
            guard: Some(guard),
        }
    }
}

/// Counts one request in flight until its answer ends (or is dropped).
struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.0;
        conn.idle_at
            .store(conn.epoch.elapsed().as_millis() as u64, Ordering::Release);
        conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// The app's future, holding the request's [`InFlight`] until the answer exists.
    struct TrackedFuture<F> {
        #[pin]
        inner: F,
        guard: Option<InFlight>,
    }
}

impl<F> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<AnswerBody>, std::convert::Infallible>>,
{
    type Output = Result<Response<Guarded<AnswerBody>>, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx))?;
        let guard = this.guard.take();
        Poll::Ready(Ok(response.map(|body| Guarded {
            body,
            _guard: guard,
        })))
    }
}

pin_project_lite::pin_project! {
    /// An answer's body, holding its request's [`InFlight`] until it ends.
    struct Guarded<B> {
        #[pin]
        body: B,
        _guard: Option<InFlight>,
    }
}

impl<B: Body> Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body which, dropped unread on HTTP/1.1, is drained in the background
/// (see [`Linger`]).
pub struct RequestBody {
    body: Option<Incoming>,
    linger: Option<Linger>,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let (Some(body), Some(linger)) = (self.body.take(), self.linger) else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        // Still inside the connection's runtime: hyper drops bodies where it polls them.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(discard_rest(body, linger));
        }
    }
}

/// Reads and discards what is left of `body`, within `linger`'s bounds.
async fn discard_rest(mut body: Incoming, linger: Linger) {
    use http_body_util::BodyExt;
    let mut read = 0u64;
    let _ = tokio::time::timeout(linger.timeout, async {
        while read <= linger.max_bytes {
            match body.frame().await {
                Some(Ok(frame)) => {
                    read += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                _ => break,
            }
        }
    })
    .await;
}

/// The executor hyper hands each HTTP/2 stream to: the streams of one connection,
/// polled by that connection's task ([`Running`]).
#[derive(Clone, Default)]
struct Streams(Arc<NewStreams>);

/// What the executor and the connection's task share.
#[derive(Default)]
struct NewStreams {
    queue: Mutex<Vec<Pin<Box<dyn Future<Output = ()> + Send>>>>,
    /// Set when `queue` has streams, so a poll takes the lock only then (an
    /// HTTP/1.1 connection never has any).
    queued: AtomicBool,
    /// The connection's task, woken for a new stream and by its streams.
    task: futures_util::task::AtomicWaker,
    /// Set when a stream wakes the task, so a poll knows to go back to them.
    woken: AtomicBool,
}

impl<F: Future<Output = ()> + Send + 'static> hyper::rt::Executor<F> for Streams {
    fn execute(&self, stream: F) {
        self.0
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::pin(stream));
        self.0.queued.store(true, Ordering::Release);
        self.0.task.wake();
    }
}

/// The waker a connection's streams are polled with.
impl futures_util::task::ArcWake for NewStreams {
    fn wake_by_ref(this: &Arc<Self>) {
        this.woken.store(true, Ordering::Release);
        this.task.wake();
    }
}

impl Streams {
    fn running(&self) -> Running {
        Running {
            shared: self.0.clone(),
            streams: futures_util::stream::FuturesUnordered::new(),
        }
    }
}

/// Polls a connection's streams; never finishes.
struct Running {
    shared: Arc<NewStreams>,
    streams: futures_util::stream::FuturesUnordered<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

/// How many times one poll goes back to streams that woke themselves, at most.
const ROUNDS: usize = 1024;

impl Future for Running {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        use futures_util::StreamExt;
        let Running { shared, streams } = &mut *self;
        shared.task.register(cx.waker());
        if shared.queued.swap(false, Ordering::AcqRel) {
            streams.extend(std::mem::take(
                &mut *shared.queue.lock().unwrap_or_else(|e| e.into_inner()),
            ));
        }
        if streams.is_empty() {
            return Poll::Pending;
        }
        let waker = futures_util::task::waker_ref(shared);
        let mut inner = Context::from_waker(&waker);
        // FuturesUnordered stops after two streams that wake themselves while
        // polled, and an HTTP/2 stream does that whenever h2 grants it send
        // capacity at once: after a change, the connection would write one or two
        // streams' frames at a time (40,000 writes for a 100k flip). Going back
        // keeps a change's frames together, in a few writes per connection.
        for _ in 0..ROUNDS {
            shared.woken.store(false, Ordering::Relaxed);
            // Ready(None) only means "empty for now": new streams come through the queue.
            while let Poll::Ready(Some(())) = streams.poll_next_unpin(&mut inner) {}
            if !shared.woken.load(Ordering::Acquire) {
                break;
            }
        }
        Poll::Pending
    }
}
