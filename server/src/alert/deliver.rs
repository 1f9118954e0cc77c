//! Delivery: one task per receiver takes its notifications from the outbox in
//! order, sends each (a webhook's JSON, signed; Slack's text and blocks; ntfy's
//! text and headers) within the receiver's timeout, and records what came of
//! it: delivered on a 2xx; failed at once on a refusal (4xx but 408 and 429);
//! otherwise retried after a backoff doubled each time, jittered, until the
//! deadline, then failed. A receiver that hangs holds only its own task.

use std::{sync::Arc, time::Duration};

use healthweb_client::native::{self, BoxBody, HttpClient, Protocol, Target, TlsSettings};
use http::{Request, header};
use http_body_util::{BodyExt, Limited};
use ring::hmac;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    AlertMetrics,
    config::{Kind, Receiver},
    now_ms,
};
use crate::history::alert_store::{AlertStore, Attempt, Delivery, Next, Outboxed};

/// The version of the webhook's JSON, in its `version` field.
pub const VERSION: &str = "healthweb.alert.v1";

/// At most this much of a receiver's answer is kept as the outcome.
const ANSWER_LIMIT: usize = 512;

/// A notification, as a webhook receives it (`healthweb.alert.v1`) and as the
/// outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// `healthweb.alert.v1`.
    pub version: String,
    /// This notification's id, the same on every retry: deduplicate by it.
    pub event_id: String,
    /// Shared by an alert's notifications (firing, reminders, resolved).
    pub alert_id: String,
    /// `firing`, `reminder`, `resolved` or `test`.
    pub kind: String,
    /// The service.
    pub service: String,
    /// The rule that made it.
    pub rule: String,
    /// Its status now.
    pub status: String,
    /// The status before it went bad.
    pub previous: String,
    /// Bad (or, when resolved, good again) since, RFC 3339.
    pub since: String,
    /// The same, in Unix milliseconds.
    pub since_ms: i64,
    /// Who made the change (`monitor`, `admin`, `config`...).
    pub cause: String,
    /// What the cause said (a probe's error, say).
    pub detail: String,
    /// The replica that sent it.
    pub replica: String,
    /// The status page's row of the service, when `public_url` is set.
    pub link: Option<String>,
}

impl Notification {
    /// One line for people (Slack, ntfy).
    pub fn text(&self) -> String {
        let what = match self.kind.as_str() {
            "resolved" => "resolved".to_owned(),
            "reminder" => format!("still {}", self.status),
            "test" => "test notification".to_owned(),
            _ => self.status.clone(),
        };
        format!(
            "{} {}: {what} since {} (was {}; rule {})",
            self.icon(),
            self.service_name(),
            self.since,
            self.previous,
            self.rule
        )
    }

    fn service_name(&self) -> &str {
        if self.service.is_empty() {
            "(server)"
        } else {
            &self.service
        }
    }

    fn icon(&self) -> &'static str {
        match self.kind.as_str() {
            "resolved" => "✅",
            "test" => "🔔",
            _ => "🚨",
        }
    }
}

/// What `healthweb alert test` sends: kind `test`, about the server (`""`).
pub fn test_notification(now_ms: i64, public_url: Option<&str>) -> Notification {
    let since = humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + Duration::from_millis(now_ms.max(0) as u64),
    );
    Notification {
        version: VERSION.to_owned(),
        event_id: format!("test-{now_ms}"),
        alert_id: format!("test-{now_ms}"),
        kind: "test".to_owned(),
        service: String::new(),
        rule: "test".to_owned(),
        status: "SERVING".to_owned(),
        previous: "SERVING".to_owned(),
        since: since.to_string(),
        since_ms: now_ms,
        cause: "test".to_owned(),
        detail: "healthweb alert test".to_owned(),
        replica: String::new(),
        link: public_url.map(|url| format!("{}/", url.trim_end_matches('/'))),
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The receiver answered with this HTTP status and body (shortened).
    Http(u16, String),
    /// No answer: the connection failed or the timeout passed.
    None(String),
}

impl Answer {
    /// Whether the receiver took it.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Http(code, _) if (200..300).contains(code))
    }

    /// Whether trying again cannot help (a refusal).
    fn is_refusal(&self) -> bool {
        matches!(self, Self::Http(code, _) if (400..500).contains(code) && *code != 408 && *code != 429)
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(code, body) if body.is_empty() => write!(f, "HTTP {code}"),
            Self::Http(code, body) => write!(f, "HTTP {code}: {body}"),
            Self::None(error) => f.write_str(error),
        }
    }
}

/// Sends to one receiver.
pub struct Sender {
    receiver: Receiver,
    client: HttpClient,
}

impl Sender {
    /// A sender for `receiver` (its TLS from the system's roots).
    pub fn new(receiver: Receiver) -> Result<Self, String> {
        let target = Target {
            url: receiver.url.to_string(),
            protocol: Protocol::GrpcWeb,
            tls: TlsSettings::default(),
            connect_timeout: receiver.timeout,
            user_agent: None,
            gzip: false,
        };
        let https = receiver.url.scheme_str() == Some("https");
        let client = native::http_client(&target, https).map_err(|e| e.to_string())?;
        Ok(Self { receiver, client })
    }

    /// The receiver.
    pub fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    /// One attempt, within `timeout`.
    pub async fn send(&self, notification: &Notification, timeout: Duration) -> Answer {
        let request = match self.request(notification) {
            Ok(request) => request,
            Err(error) => return Answer::None(error),
        };
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| native::error_chain(&e))?;
            let code = response.status().as_u16();
            let body = Limited::new(response.into_body(), 64 * 1024)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut text = String::from_utf8_lossy(&body).trim().to_owned();
            if text.len() > ANSWER_LIMIT {
                let mut end = ANSWER_LIMIT;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                text.push('…');
            }
            Ok::<_, String>(Answer::Http(code, text))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => Answer::None(error),
            Err(_) => Answer::None(format!("no answer within {} ms", timeout.as_millis())),
        }
    }

    fn request(&self, n: &Notification) -> Result<Request<BoxBody>, String> {
        let r = &self.receiver;
        let builder = Request::post(r.url.clone()).header(
            header::USER_AGENT,
            concat!("healthweb/", env!("CARGO_PKG_VERSION")),
        );
        let (builder, body) = match r.kind {
            Kind::Webhook => {
                let body = serde_json::to_vec(n).map_err(|e| e.to_string())?;
                let mut builder = builder
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("x-healthweb-event", &n.kind)
                    .header("x-healthweb-delivery", &n.event_id);
                if let Some(secret) = &r.secret {
                    builder = builder.header("x-healthweb-signature-256", signature(secret, &body));
                }
                (builder, body)
            }
            Kind::Slack => {
                let text = n.text();
                let mut context = format!("cause: {}", n.cause);
                if !n.detail.is_empty() {
                    context.push_str(&format!(" ({})", n.detail));
                }
                if !n.replica.is_empty() {
                    context.push_str(&format!(" · replica {}", n.replica));
                }
                if let Some(link) = &n.link {
                    context.push_str(&format!(" · <{link}|status page>"));
                }
                let body = serde_json::json!({
                    "text": text,
                    "blocks": [
                        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
                    ],
                });
                (
                    builder.header(header::CONTENT_TYPE, "application/json"),
                    body.to_string().into_bytes(),
                )
            }
            Kind::Ntfy => {
                let (priority, tag) = match n.kind.as_str() {
                    "resolved" => ("default", "white_check_mark"),
                    "test" => ("low", "bell"),
                    _ => ("high", "rotating_light"),
                };
                let title = format!("{}: {}", n.service_name(), n.status);
                let mut builder = builder
                    .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                    .header("title", title.replace(['\r', '\n'], " "))
                    .header("priority", priority)
                    .header("tags", tag);
                if let Some(link) = &n.link {
                    builder = builder.header("click", link);
                }
                (builder, n.text().into_bytes())
            }
        };
        builder
            .body(native::full_body(body))
            .map_err(|e| format!("cannot build the request: {e}"))
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`, as GitHub signs
/// its webhooks (`X-Hub-Signature-256`).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256=");
    for byte in tag.as_ref() {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// The delay before attempt `attempts + 1`: `backoff` doubled per attempt made,
/// at most `max`, jittered down by up to half.
fn delay(receiver: &Receiver, attempts: u32) -> Duration {
    let doubled = receiver
        .backoff
        .saturating_mul(1 << attempts.saturating_sub(1).min(20));
    let full = doubled.min(receiver.max_backoff);
    let mut byte = [0u8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte);
    full.mul_f64(0.5 + f64::from(byte[0]) / 510.0)
}

/// The receiver's task: until `stop`, the outbox's notifications for it, in
/// order, one at a time.
pub async fn run(
    sender: Arc<Sender>,
    store: Arc<dyn AlertStore>,
    wake: Arc<Notify>,
    metrics: AlertMetrics,
    stop: CancellationToken,
) {
    let r = sender.receiver();
    // Long enough for one attempt and its record; another replica may take a
    // claim only after it.
    let claim = r.timeout + Duration::from_secs(10);
    loop {
        let pause = match store.next_notice(&r.name, now_ms(), claim).await {
            Ok(Next::Claimed(row)) => {
                let attempt = tokio::select! {
                    attempt = deliver(&sender, &row) => attempt,
                    () = stop.cancelled() => return,
                };
                if let Err(error) = store.record_attempt(&attempt).await {
                    tracing::warn!(%error, receiver = %r.name, "cannot record a delivery");
                    Duration::from_secs(1)
                } else {
                    // Counted once it is recorded: what /metrics shows survives a kill.
                    metrics.sent(&r.name, attempt.state);
                    continue;
                }
            }
            Ok(Next::Idle(Some(due))) => {
                Duration::from_millis(due.saturating_sub(now_ms()).clamp(1, 60_000) as u64)
            }
            Ok(Next::Idle(None)) => Duration::from_secs(60),
            Ok(Next::Fenced) => Duration::from_secs(1),
            Err(error) => {
                tracing::warn!(%error, receiver = %r.name, "cannot read the outbox");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = wake.notified() => {}
            () = stop.cancelled() => return,
        }
    }
}

/// One attempt at `row`, and what to record.
async fn deliver(sender: &Sender, row: &Outboxed) -> Attempt {
    let r = sender.receiver();
    let attempts = row.attempts + 1;
    let deadline = row.notice.deadline_ms;
    let answer = match serde_json::from_str::<Notification>(&row.notice.payload) {
        Ok(n) => {
            let left = deadline.saturating_sub(now_ms()).max(1) as u64;
            let timeout = r.timeout.min(Duration::from_millis(left));
            sender.send(&n, timeout).await
        }
        Err(e) => Answer::None(format!("unreadable notification in the outbox: {e}")),
    };
    let now = now_ms();
    let (state, due, outcome) = if answer.is_success() {
        (Delivery::Delivered, now, answer.to_string())
    } else if answer.is_refusal() {
        (Delivery::Failed, now, format!("refused: {answer}"))
    } else {
        let due = now.saturating_add(delay(r, attempts).as_millis() as i64);
        if now >= deadline || due > deadline {
            let outcome = format!("gave up after {attempts} attempts (deadline): {answer}");
            (Delivery::Failed, now, outcome)
        } else {
            (Delivery::Pending, due, answer.to_string())
        }
    };
    match state {
        Delivery::Delivered => {
            tracing::info!(receiver = %r.name, event = %row.notice.event, %answer, "alert delivered")
        }
        _ => {
            tracing::warn!(receiver = %r.name, event = %row.notice.event, attempts, outcome = %outcome, "alert not delivered")
        }
    }
    Attempt {
        id: row.id,
        attempts,
        state,
        due_ms: due,
        last_ms: now,
        outcome,
    }
}
