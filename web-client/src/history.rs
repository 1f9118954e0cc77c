//! healthweb's own History service (`healthweb.v1.History`), beside Health: one
//! service's transitions, uptime and probe latency in one call, through the same
//! transport, headers and deadline as Check. Servers other than healthweb answer
//! UNIMPLEMENTED.

use futures_util::future::try_join3;
use healthweb_proto::history::{
    LatencyRequest, LatencyResponse, Minute, TransitionsRequest, TransitionsResponse,
    UptimeRequest, UptimeResponse,
};
use prost::Message;

use crate::{
    Client, Error, Transport,
    core::{decode, path},
};

/// What [`Client::history`] asks for; zeros are the server's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// At most this many transitions, newest first (0: 100; the server allows 1000).
    pub limit: u32,
    /// Only transitions at or after this time, in Unix milliseconds (0: from the start).
    pub since_unix_ms: i64,
    /// Only transitions before this time, in Unix milliseconds (0: until now).
    pub until_unix_ms: i64,
    /// How many buckets the uptime bar has (0: 48; at most 1440).
    pub buckets: u32,
    /// The bar's span, ending now, in seconds (0: 24 hours; at most 30 days).
    pub span_seconds: u32,
    /// Whether to ask for the last hour of probe latency too (monitored upstreams
    /// have it; for other services it is empty). Without it, one call fewer.
    pub latency: bool,
}

/// One service's history, as the server reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Its status changes, newest first, and whether the limit cut older ones.
    pub transitions: TransitionsResponse,
    /// The 24 h, 7 d and 30 d windows, the bar's buckets and the current status.
    pub uptime: UptimeResponse,
    /// Probe latency a minute, oldest first; empty unless asked for.
    pub latency: Vec<Minute>,
}

/// The three replies of [`Client::history_encoded`], as they came over the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedHistory {
    /// A `TransitionsResponse`.
    pub transitions: Vec<u8>,
    /// An `UptimeResponse`.
    pub uptime: Vec<u8>,
    /// A `LatencyResponse`; empty (no minutes) unless asked for.
    pub latency: Vec<u8>,
}

impl EncodedHistory {
    /// The replies as prost's messages.
    pub fn decode(&self) -> Result<History, Error> {
        Ok(History {
            transitions: decode(&self.transitions)?,
            uptime: decode(&self.uptime)?,
            latency: decode::<LatencyResponse>(&self.latency)?.minutes,
        })
    }
}

impl<T: Transport> Client<T> {
    /// The history of `service` (`""` is the server as a whole): Transitions and
    /// Uptime, and Latency if `query` asks, called at once. The first failure is the
    /// answer (NOT_FOUND for a service the server neither has nor remembers,
    /// INVALID_ARGUMENT for a query it refuses), and ends the other calls.
    pub async fn history(&self, service: &str, query: &HistoryQuery) -> Result<History, Error> {
        self.history_encoded(service, query).await?.decode()
    }

    /// [`Client::history`], with the replies left encoded: the browser module turns
    /// them into JavaScript objects in one pass (`js_replies`), without prost's
    /// decoders for these messages.
    pub async fn history_encoded(
        &self,
        service: &str,
        query: &HistoryQuery,
    ) -> Result<EncodedHistory, Error> {
        let transitions = TransitionsRequest {
            service: service.to_owned(),
            since_unix_ms: query.since_unix_ms,
            until_unix_ms: query.until_unix_ms,
            limit: query.limit,
        };
        let uptime = UptimeRequest {
            service: service.to_owned(),
            buckets: query.buckets,
            span_seconds: query.span_seconds,
        };
        let latency = LatencyRequest {
            service: service.to_owned(),
            since_unix_ms: 0,
        };
        // Three calls of one future type, bytes in and bytes out: the browser module
        // holds the call path once rather than once per reply type.
        let latency = async {
            match query.latency {
                true => {
                    self.unary_encoded(path::LATENCY, latency.encode_to_vec())
                        .await
                }
                false => Ok(Vec::new()),
            }
        };
        let (transitions, uptime, latency) = try_join3(
            self.unary_encoded(path::TRANSITIONS, transitions.encode_to_vec()),
            self.unary_encoded(path::UPTIME, uptime.encode_to_vec()),
            latency,
        )
        .await?;
        Ok(EncodedHistory {
            transitions,
            uptime,
            latency,
        })
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use healthweb_proto::history::{Bucket, Transition};
    use prost::Message;
    use tonic::Code;

    use super::*;
    use crate::{Options, scripted::Scripted};

    /// Answers each History method once with a fixed reply, but `refuse`, which it
    /// answers with INVALID_ARGUMENT.
    fn fake(refuse: Option<&'static str>) -> Scripted {
        let t = Scripted::default();
        let latency = LatencyResponse {
            minutes: vec![Minute {
                probes: 3,
                p50_ms: 1.5,
                ..Default::default()
            }],
        };
        for (method, reply) in [
            (path::TRANSITIONS, transitions().encode_to_vec()),
            (path::UPTIME, uptime().encode_to_vec()),
            (path::LATENCY, latency.encode_to_vec()),
        ] {
            let answer = match refuse {
                Some(refused) if refused == method => Err(Error::new(Code::InvalidArgument, "no")),
                _ => Ok(reply),
            };
            t.answer(method, [answer]);
        }
        t
    }

    fn transitions() -> TransitionsResponse {
        TransitionsResponse {
            transitions: vec![Transition {
                at_unix_ms: 1_700_000_000_000,
                from: 1,
                to: 2,
                cause: 3,
                detail: "drained".into(),
                count: 1,
                worst: 2,
                until_unix_ms: 1_700_000_000_000,
                replica: "web-1".into(),
                in_maintenance: true,
            }],
            truncated: true,
        }
    }

    fn uptime() -> UptimeResponse {
        UptimeResponse {
            buckets: vec![Bucket {
                start_unix_ms: 1,
                end_unix_ms: 2,
                worst: 2,
                serving: 0.5,
                changes: 1,
            }],
            current: 2,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn asks_each_method_and_decodes_each_reply() {
        let client = Client::new(fake(None), Options::default()).unwrap();
        let query = HistoryQuery {
            limit: 5,
            since_unix_ms: 10,
            buckets: 24,
            latency: true,
            ..Default::default()
        };
        let history = client.history("api", &query).await.unwrap();
        assert_eq!(history.transitions, transitions());
        assert_eq!(history.uptime, uptime());
        assert_eq!(history.latency[0].probes, 3);

        let calls = client.transport().calls.take();
        let sent = |m| {
            calls
                .iter()
                .find(|(name, _)| *name == m)
                .map(|(_, b)| b.clone())
                .unwrap()
        };
        let asked = TransitionsRequest::decode(&sent(path::TRANSITIONS)[..]).unwrap();
        assert_eq!(
            (asked.service.as_str(), asked.limit, asked.since_unix_ms),
            ("api", 5, 10)
        );
        assert_eq!(
            UptimeRequest::decode(&sent(path::UPTIME)[..])
                .unwrap()
                .buckets,
            24
        );
        assert_eq!(calls.len(), 3);
    }

    #[tokio::test]
    async fn latency_only_when_asked_and_the_first_failure_wins() {
        let client = Client::new(fake(None), Options::default()).unwrap();
        let history = client
            .history("api", &HistoryQuery::default())
            .await
            .unwrap();
        assert!(history.latency.is_empty());
        let calls = client.transport().calls.take();
        assert!(calls.iter().all(|(m, _)| *m != path::LATENCY), "{calls:?}");

        let client = Client::new(fake(Some(path::UPTIME)), Options::default()).unwrap();
        let err = client
            .history("api", &HistoryQuery::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
}
