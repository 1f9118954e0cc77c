//! The monitor's connections, shared: upstreams on the same address, asked the
//! same way, are followed over one connection (native gRPC: one HTTP/2 connection
//! with a Watch stream each), up to a number of upstreams a connection, past which
//! another connection opens. 10,000 upstreams on 10 servers are then about 100
//! connections, not 10,000.
//!
//! A connection lives as long as an upstream task uses it: the pool holds only
//! weak references, so the last task to stop (removed, or its lease gone) closes
//! it. It dials on its first call and again after it is lost (tonic's channel), so
//! an address that does not answer fails each upstream's call, as a call.

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
};

use healthweb_client::{
    Options,
    native::{self, ConnectError, NativeClient, Target},
};

/// How many upstreams share one connection by default: HTTP/2's recommended least
/// `SETTINGS_MAX_CONCURRENT_STREAMS` (RFC 9113), which any server should allow.
pub const DEFAULT_PER_CONNECTION: usize = 100;

/// One shared connection; an upstream task holds it while it uses it.
pub(super) type Lease = Arc<NativeClient>;

/// The connections, by everything that makes one (address, wire, TLS, timeout,
/// User-Agent).
#[derive(Debug, Clone)]
pub(super) struct Pool {
    // tokio's: held while a connection is made, so upstreams starting together
    // share it instead of each making one.
    connections: Arc<tokio::sync::Mutex<HashMap<String, Vec<Weak<NativeClient>>>>>,
    per_connection: usize,
}

impl Pool {
    pub(super) fn new(per_connection: usize) -> Self {
        Self {
            connections: Arc::default(),
            per_connection: per_connection.max(1),
        }
    }

    /// A client of `target` with `options` (its deadline and headers), over a
    /// connection shared with at most `per_connection - 1` other upstreams; and the
    /// lease that keeps that connection, to hold as long as the client is used.
    pub(super) async fn client(
        &self,
        target: &Target,
        options: Options,
    ) -> Result<(NativeClient, Lease), ConnectError> {
        // The Debug form names every field of the target: two targets that print
        // alike connect alike.
        let key = format!("{target:?}");
        let mut connections = self.connections.lock().await;
        let shared = connections.entry(key).or_default();
        shared.retain(|weak| weak.strong_count() > 0);
        let found = shared
            .iter()
            .filter_map(Weak::upgrade)
            // The one upgraded here counts too.
            .find(|lease| Arc::strong_count(lease) <= self.per_connection);
        let lease = match found {
            Some(lease) => lease,
            None => {
                // Lazy: nothing is dialled while the pool is held.
                let lease = Arc::new(native::connect_lazy(target, Options::default()).await?);
                shared.push(Arc::downgrade(&lease));
                lease
            }
        };
        drop(connections);
        let client = healthweb_client::Client::new(lease.transport().clone(), options)
            .map_err(|e| ConnectError::Invalid(e.to_string()))?;
        Ok((client, lease))
    }

    /// How many connections are open (or will be, on their first call).
    pub(super) async fn connections(&self) -> usize {
        self.connections
            .lock()
            .await
            .values()
            .flatten()
            .filter(|weak| weak.strong_count() > 0)
            .count()
    }
}
