//! The heartbeat and the leases: every third of the lease period, this replica
//! says it is alive (with the upstreams its config names), reads who else is,
//! works out its share ([`super::assign`]), gives back what is no longer its
//! (its probes stopped first), and takes or renews the rest. Only what it holds
//! is probed, and only until the lease could expire: a renewal not acknowledged
//! in time stops every probe.
//!
//! An upstream whose lease nobody has held for a whole period (the replicas
//! disagree for a moment, or the one it falls to cannot probe it) is taken by
//! any replica that can: no upstream is left unprobed.
//!
//! The same round publishes what this replica's monitor saw of the upstreams it
//! probes, and reads what the others saw of theirs, for `/upstreams` and the page.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{
    Parts, Peer, Probing, View,
    assign::{Member, assign},
};
use crate::{
    history::{Postgres, StoreError, postgres::FLEET_CHANNEL},
    monitor::{Report, Reports},
};

/// A lease's name for an upstream.
const UPSTREAM: &str = "upstream/";

/// The heartbeat and lease loop's state.
pub(super) struct Leases {
    postgres: Arc<Postgres>,
    probing: Arc<dyn Probing>,
    reports: Reports,
    view: View,
    period: Duration,
    /// Rung by the listener when replicas come, go or give leases back.
    wake: Arc<Notify>,
    /// The upstreams whose leases this replica holds (and probes).
    held: BTreeSet<String>,
    /// Until when they may be probed: the last acknowledged renewal's start,
    /// plus the period, less a margin.
    valid_until: Option<Instant>,
    /// Upstreams nobody holds, and since when.
    free_since: HashMap<String, Instant>,
    /// When each report was published last (its `probed_at`).
    published: HashMap<String, String>,
    /// Whether the loss of the database was said (once an outage).
    lost_said: bool,
    /// Whether the fleet was told this replica joined.
    announced: bool,
}

impl Leases {
    /// The loop of the fleet made of `parts`, driving `probing`, woken by `wake`.
    pub(super) fn new(parts: &Parts, probing: Arc<dyn Probing>, wake: Arc<Notify>) -> Self {
        Self {
            postgres: parts.postgres.clone(),
            probing,
            reports: parts.reports.clone(),
            view: parts.view.clone(),
            period: parts.lease_period,
            wake,
            held: BTreeSet::new(),
            valid_until: None,
            free_since: HashMap::new(),
            published: HashMap::new(),
            lost_said: false,
            announced: false,
        }
    }

    fn tick(&self) -> Duration {
        self.period / 3
    }

    pub(super) async fn run(mut self, leave: CancellationToken) {
        let mut next = Instant::now();
        loop {
            let deadline = self.deadline();
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(deadline.unwrap_or(next)), if deadline.is_some() => {}
                () = leave.cancelled() => break,
            }
            next = Instant::now() + self.tick();
            if self.deadline().is_some_and(|d| Instant::now() >= d) {
                self.lose().await;
            }
            // A round never outlives the leases it could renew.
            let limit = self.deadline().map_or(next, |d| d.min(next));
            let result = tokio::time::timeout_at(limit, self.round()).await;
            let error = match result {
                Ok(Ok(())) => {
                    if std::mem::take(&mut self.lost_said) {
                        tracing::warn!("the database answers again: probing this replica's share");
                    }
                    continue;
                }
                Ok(Err(error)) => error,
                Err(_) => StoreError::Unreachable(format!(
                    "{}: the heartbeat got no answer in time",
                    crate::history::Store::describe(&*self.postgres)
                )),
            };
            if !std::mem::replace(&mut self.lost_said, true) {
                tracing::warn!(
                    %error,
                    held = self.held.len(),
                    "cannot renew leases; the probes stop before the leases can expire, \
                     so that another replica can take them"
                );
            }
            if self.deadline().is_some_and(|d| Instant::now() >= d) {
                self.lose().await;
            }
        }
        self.leave().await;
    }

    /// When the held leases may have expired, if any are held.
    fn deadline(&self) -> Option<Instant> {
        self.valid_until.filter(|_| !self.held.is_empty())
    }

    /// Probes exactly `upstreams`, waiting for the ones stopped.
    async fn allow(&mut self, upstreams: BTreeSet<String>) {
        for task in self.probing.allow(upstreams.clone()) {
            let _ = task.await;
        }
        self.held = upstreams;
        let probing: Vec<String> = self.held.iter().cloned().collect();
        self.view.update(|s| s.probing = probing);
    }

    /// The leases could have expired: stop probing.
    async fn lose(&mut self) {
        if !self.held.is_empty() {
            tracing::warn!(
                stopped = self.held.len(),
                "leases not renewed in time: stopped probing"
            );
        }
        self.allow(BTreeSet::new()).await;
        self.valid_until = None;
    }

    /// One heartbeat: alive, who else is, what is ours, give back, take.
    async fn round(&mut self) -> Result<(), StoreError> {
        let postgres = self.postgres.clone();
        let fail = |e: tokio_postgres::Error| postgres.error(&e);
        let client = self.postgres.client().await?;
        let me = self.postgres.instance().to_owned();
        let configured = self.probing.configured();
        let period_ms = self.period.as_millis() as f64;
        let names: Vec<&str> = configured.iter().map(String::as_str).collect();
        client
            .execute(
                "INSERT INTO healthweb_replicas
                   (instance, name, started_ms, alive_ms, expires_at, upstreams)
                 VALUES ($1, $2, $3, $3, now() + make_interval(secs => $4::float8 / 1000), $5)
                 ON CONFLICT (instance) DO UPDATE SET
                   expires_at = excluded.expires_at, upstreams = excluded.upstreams",
                &[
                    &me,
                    &self.postgres.replica(),
                    &crate::history::now_ms(),
                    &period_ms,
                    &names,
                ],
            )
            .await
            .map_err(fail)?;
        let live = client
            .query(
                "SELECT instance, name, upstreams FROM healthweb_replicas
                 WHERE expires_at > now()",
                &[],
            )
            .await
            .map_err(fail)?;
        let members: Vec<Member> = live
            .iter()
            .map(|r| Member {
                instance: r.get(0),
                upstreams: r.get::<_, Vec<String>>(2).into_iter().collect(),
            })
            .collect();
        let names_of: HashMap<String, String> = live
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect();
        let holders: BTreeMap<String, String> = client
            .query(
                "SELECT substr(name, $1), holder FROM healthweb_leases
                 WHERE name LIKE 'upstream/%' AND expires_at > now()",
                &[&(UPSTREAM.len() as i32 + 1)],
            )
            .await
            .map_err(fail)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();

        // Ours: what the assignment gives us, and what nobody took for a period.
        let owners = assign(&members);
        let now = Instant::now();
        let mut mine: BTreeSet<String> = configured
            .iter()
            .filter(|name| owners.get(*name) == Some(&me))
            .cloned()
            .collect();
        for name in &configured {
            if holders.get(name).is_some_and(|h| names_of.contains_key(h)) {
                self.free_since.remove(name);
            } else if now - *self.free_since.entry(name.clone()).or_insert(now) >= self.period {
                mine.insert(name.clone());
            }
        }
        self.free_since.retain(|name, _| configured.contains(name));

        // Give back what is no longer ours, its probes stopped first.
        let gone: Vec<String> = self
            .held
            .difference(&mine)
            .map(|name| format!("{UPSTREAM}{name}"))
            .collect();
        if !gone.is_empty() {
            let kept = self.held.intersection(&mine).cloned().collect();
            self.allow(kept).await;
            client
                .execute(
                    "DELETE FROM healthweb_leases WHERE holder = $1 AND name = ANY($2)",
                    &[&me, &gone],
                )
                .await
                .map_err(fail)?;
            tell_fleet(&self.postgres, &client, "leases").await?;
        }

        // Take (or renew) ours: free, expired, or already ours.
        let wanted: Vec<String> = mine.iter().map(|n| format!("{UPSTREAM}{n}")).collect();
        let sent = Instant::now();
        let got: BTreeSet<String> = client
            .query(
                "INSERT INTO healthweb_leases (name, holder, expires_at)
                 SELECT unnest($1::text[]), $2, now() + make_interval(secs => $3::float8 / 1000)
                 ON CONFLICT (name) DO UPDATE SET
                   holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE healthweb_leases.holder = excluded.holder
                    OR healthweb_leases.expires_at < now()
                 RETURNING substr(name, $4)",
                &[&wanted, &me, &period_ms, &(UPSTREAM.len() as i32 + 1)],
            )
            .await
            .map_err(fail)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // The database's expiry is at least the period after `sent`: stopping a
        // sixth of it earlier leaves room for this clock and a slow task.
        self.valid_until = Some(sent + self.period - self.period / 6);
        if got != self.held {
            self.allow(got).await;
        }

        // Who probes how much, for the page.
        let mut probes: BTreeMap<&str, usize> = BTreeMap::new();
        for holder in holders.values() {
            *probes.entry(holder.as_str()).or_default() += 1;
        }
        let mut peers: Vec<Peer> = names_of
            .iter()
            .map(|(instance, name)| Peer {
                replica: name.clone(),
                probes: if *instance == me {
                    self.held.len()
                } else {
                    probes.get(instance.as_str()).copied().unwrap_or(0)
                },
            })
            .collect();
        peers.sort_by(|a, b| a.replica.cmp(&b.replica));
        self.view.update(|s| s.replicas = peers);

        if !self.announced {
            // The others rebalance now, not at their next heartbeat.
            tell_fleet(&self.postgres, &client, "joined").await?;
            self.announced = true;
        }
        self.share_reports(&client).await
    }

    /// Publishes what this replica saw of the upstreams it probes, and takes
    /// what the others saw of theirs.
    async fn share_reports(&mut self, client: &tokio_postgres::Client) -> Result<(), StoreError> {
        let postgres = self.postgres.clone();
        let fail = |e: tokio_postgres::Error| postgres.error(&e);
        let fresh: Vec<(String, String, String)> = {
            let reports = self.reports.read().unwrap_or_else(|e| e.into_inner());
            self.held
                .iter()
                .filter_map(|name| {
                    let report = reports.get(name)?;
                    let at = report.probed_at.clone()?;
                    (self.published.get(name) != Some(&at)).then(|| {
                        let json = serde_json::to_string(report).unwrap_or_default();
                        (name.clone(), json, at)
                    })
                })
                .collect()
        };
        if !fresh.is_empty() {
            let services: Vec<&str> = fresh.iter().map(|f| f.0.as_str()).collect();
            let json: Vec<&str> = fresh.iter().map(|f| f.1.as_str()).collect();
            client
                .execute(
                    "INSERT INTO healthweb_reports (service, replica, report, updated_ms)
                     SELECT s, $3, r, $4 FROM unnest($1::text[], $2::text[]) AS u(s, r)
                     ON CONFLICT (service) DO UPDATE SET replica = excluded.replica,
                       report = excluded.report, updated_ms = excluded.updated_ms",
                    &[
                        &services,
                        &json,
                        &self.postgres.replica(),
                        &crate::history::now_ms(),
                    ],
                )
                .await
                .map_err(fail)?;
            for (name, _, at) in fresh {
                self.published.insert(name, at);
            }
        }
        let theirs = client
            .query("SELECT service, report FROM healthweb_reports", &[])
            .await
            .map_err(fail)?;
        let configured = self.probing.configured();
        let mut reports = self.reports.write().unwrap_or_else(|e| e.into_inner());
        for row in theirs {
            let service: String = row.get(0);
            if self.held.contains(&service) || !configured.contains(&service) {
                continue;
            }
            let json: &str = row.get(1);
            if let Ok(report) = serde_json::from_str::<Report>(json) {
                reports.insert(service, report);
            }
        }
        Ok(())
    }

    /// The clean stop: probes stopped, leases given back, the fleet told.
    async fn leave(mut self) {
        self.allow(BTreeSet::new()).await;
        let postgres = self.postgres.clone();
        let leave = async {
            let client = postgres.client().await?;
            let fail = |e: tokio_postgres::Error| postgres.error(&e);
            let me = postgres.instance();
            client
                .execute("DELETE FROM healthweb_leases WHERE holder = $1", &[&me])
                .await
                .map_err(fail)?;
            client
                .execute(
                    "UPDATE healthweb_replicas SET expires_at = now() WHERE instance = $1",
                    &[&me],
                )
                .await
                .map_err(fail)?;
            tell_fleet(&postgres, &client, "left").await?;
            Ok::<_, StoreError>(())
        };
        match tokio::time::timeout(postgres.timeout(), leave).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not give the leases back: they expire instead");
            }
            Err(_) => tracing::warn!("could not give the leases back in time: they expire instead"),
        }
    }
}

/// Tells the other replicas' listeners `news` (`joined`, `left`, `leases`), so they
/// rebalance now rather than at their next heartbeat.
async fn tell_fleet(
    postgres: &Postgres,
    client: &tokio_postgres::Client,
    news: &str,
) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_notify($1, $2)", &[&FLEET_CHANNEL, &news])
        .await
        .map_err(|e| postgres.error(&e))?;
    Ok(())
}
