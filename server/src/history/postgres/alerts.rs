//! The alerts' tables in PostgreSQL, fenced by the `alerts` lease: a commit or
//! a claim is made only while this instance holds it (checked in the same
//! transaction, the lease row locked until the commit, so a replica taking the
//! lease over sees every commit of the one before). A notification is claimed
//! (by the database's clock) before it is sent: no two replicas send one.

use std::time::Duration;

use tokio_postgres::Row;

use super::Postgres;
use crate::history::{
    StoreError,
    alert_store::{
        AdHocWindow, AlertState, AlertStore, Attempt, Commit, Delivery, Next, Notice, Outboxed,
        SENDER_LEASE,
    },
};

const OUTBOX: &str = "id, event_id, receiver, service, rule, kind, payload, created_ms, \
                      deadline_ms, due_ms, attempts, state, last_ms, outcome";

fn outboxed(r: &Row) -> Outboxed {
    Outboxed {
        id: r.get(0),
        notice: Notice {
            event: r.get(1),
            receiver: r.get(2),
            service: r.get(3),
            rule: r.get(4),
            kind: r.get(5),
            payload: r.get(6),
            created_ms: r.get(7),
            deadline_ms: r.get(8),
        },
        due_ms: r.get(9),
        attempts: u32::try_from(r.get::<_, i32>(10)).unwrap_or(0),
        state: Delivery::parse(r.get(11)),
        last_ms: r.get(12),
        outcome: r.get(13),
    }
}

const WINDOW: &str = "id, services, start_ms, end_ms, reason, replica, created_ms";

fn window(r: &Row) -> AdHocWindow {
    AdHocWindow {
        id: r.get(0),
        services: r.get(1),
        start_ms: r.get(2),
        end_ms: r.get(3),
        reason: r.get(4),
        replica: r.get(5),
        created_ms: r.get(6),
    }
}

/// Whether this instance holds the alerts lease, the lease row locked until
/// the transaction ends.
const HOLDS: &str = "SELECT 1 FROM healthweb_leases
                     WHERE name = $1 AND holder = $2 AND expires_at > now() FOR SHARE";

#[async_trait::async_trait]
impl AlertStore for Postgres {
    async fn lead(&self, period: Duration) -> Result<bool, StoreError> {
        // Free, expired, or already ours: the first replica to ask takes it.
        let client = self.client().await?;
        let held = client
            .query_opt(
                "INSERT INTO healthweb_leases (name, holder, expires_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3::float8))
                 ON CONFLICT (name) DO UPDATE SET
                   holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE healthweb_leases.holder = excluded.holder
                    OR healthweb_leases.expires_at < now()
                 RETURNING 1",
                &[&SENDER_LEASE, &self.instance(), &period.as_secs_f64()],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(held.is_some())
    }

    async fn alert_states(&self) -> Result<Vec<AlertState>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT rule, service, alert_id, status, previous, since_ms, fired_ms,
                   reminded_ms, reminders FROM healthweb_alert_states",
                &[],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(rows
            .iter()
            .map(|r| AlertState {
                rule: r.get(0),
                service: r.get(1),
                alert_id: r.get(2),
                status: r.get(3),
                previous: r.get(4),
                since_ms: r.get(5),
                fired_ms: r.get(6),
                reminded_ms: r.get(7),
                reminders: u32::try_from(r.get::<_, i32>(8)).unwrap_or(0),
            })
            .collect())
    }

    async fn commit_alerts(&self, commit: &Commit) -> Result<bool, StoreError> {
        let fail = |e: tokio_postgres::Error| self.error(&e);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(fail)?;
        if tx
            .query_opt(HOLDS, &[&SENDER_LEASE, &self.instance()])
            .await
            .map_err(fail)?
            .is_none()
        {
            return Ok(false);
        }
        for s in &commit.set {
            tx.execute(
                "INSERT INTO healthweb_alert_states (rule, service, alert_id, status, previous,
                   since_ms, fired_ms, reminded_ms, reminders)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (rule, service) DO UPDATE SET alert_id = excluded.alert_id,
                   status = excluded.status, previous = excluded.previous,
                   since_ms = excluded.since_ms, fired_ms = excluded.fired_ms,
                   reminded_ms = excluded.reminded_ms, reminders = excluded.reminders",
                &[
                    &s.rule,
                    &s.service,
                    &s.alert_id,
                    &s.status,
                    &s.previous,
                    &s.since_ms,
                    &s.fired_ms,
                    &s.reminded_ms,
                    &(s.reminders as i32),
                ],
            )
            .await
            .map_err(fail)?;
        }
        for (rule, service) in &commit.clear {
            tx.execute(
                "DELETE FROM healthweb_alert_states WHERE rule = $1 AND service = $2",
                &[rule, service],
            )
            .await
            .map_err(fail)?;
        }
        for n in &commit.notices {
            tx.execute(
                "INSERT INTO healthweb_outbox (event_id, receiver, service, rule, kind, payload,
                   created_ms, deadline_ms, due_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7)
                 ON CONFLICT (event_id, receiver) DO NOTHING",
                &[
                    &n.event,
                    &n.receiver,
                    &n.service,
                    &n.rule,
                    &n.kind,
                    &n.payload,
                    &n.created_ms,
                    &n.deadline_ms,
                ],
            )
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(true)
    }

    async fn next_notice(
        &self,
        receiver: &str,
        now_ms: i64,
        claim: Duration,
    ) -> Result<Next, StoreError> {
        let fail = |e: tokio_postgres::Error| self.error(&e);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(fail)?;
        let me = self.instance();
        if tx
            .query_opt(HOLDS, &[&SENDER_LEASE, &me])
            .await
            .map_err(fail)?
            .is_none()
        {
            return Ok(Next::Fenced);
        }
        let claimed = tx
            .query_opt(
                &format!(
                    "UPDATE healthweb_outbox SET claimed_by = $3,
                       claimed_until = now() + make_interval(secs => $4::float8)
                     WHERE id = (
                       SELECT o.id FROM healthweb_outbox o
                       WHERE o.receiver = $1 AND o.state = 'pending' AND o.due_ms <= $2
                         AND (o.claimed_until < now() OR o.claimed_by = $3)
                         AND NOT EXISTS (SELECT 1 FROM healthweb_outbox e
                           WHERE e.receiver = o.receiver AND e.service = o.service
                             AND e.state = 'pending' AND e.id < o.id)
                       ORDER BY o.id LIMIT 1 FOR UPDATE SKIP LOCKED)
                     RETURNING {OUTBOX}"
                ),
                &[&receiver, &now_ms, &me, &claim.as_secs_f64()],
            )
            .await
            .map_err(fail)?;
        let next = match claimed {
            Some(row) => Next::Claimed(Box::new(outboxed(&row))),
            None => Next::Idle(
                tx.query_one(
                    "SELECT min(due_ms) FROM healthweb_outbox
                     WHERE receiver = $1 AND state = 'pending'",
                    &[&receiver],
                )
                .await
                .map_err(fail)?
                .get(0),
            ),
        };
        tx.commit().await.map_err(fail)?;
        Ok(next)
    }

    async fn record_attempt(&self, a: &Attempt) -> Result<(), StoreError> {
        // Not fenced: what the receiver said is a fact whoever holds the lease now.
        let client = self.client().await?;
        client
            .execute(
                "UPDATE healthweb_outbox SET attempts = $2, state = $3, due_ms = $4,
                   last_ms = $5, outcome = $6, claimed_until = '-infinity'
                 WHERE id = $1",
                &[
                    &a.id,
                    &(a.attempts as i32),
                    &a.state.as_str(),
                    &a.due_ms,
                    &a.last_ms,
                    &a.outcome,
                ],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(())
    }

    async fn recent_notices(&self, since_ms: i64) -> Result<Vec<Outboxed>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {OUTBOX} FROM healthweb_outbox WHERE id IN (
                       SELECT max(id) FROM healthweb_outbox WHERE created_ms >= $1
                       GROUP BY service) OR state = 'pending'
                     ORDER BY id"
                ),
                &[&since_ms],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(rows.iter().map(outboxed).collect())
    }

    async fn windows(&self, since_ms: i64) -> Result<Vec<AdHocWindow>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {WINDOW} FROM healthweb_maintenance WHERE end_ms >= $1
                     ORDER BY start_ms, id"
                ),
                &[&since_ms],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(rows.iter().map(window).collect())
    }

    async fn add_window(&self, w: &AdHocWindow, max: usize) -> Result<bool, StoreError> {
        let fail = |e: tokio_postgres::Error| self.error(&e);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(fail)?;
        // Replicas opening windows at once count one after the other.
        tx.execute("LOCK TABLE healthweb_maintenance IN EXCLUSIVE MODE", &[])
            .await
            .map_err(fail)?;
        let open: i64 = tx
            .query_one(
                "SELECT count(*) FROM healthweb_maintenance WHERE end_ms > $1",
                &[&w.start_ms],
            )
            .await
            .map_err(fail)?
            .get(0);
        if open as usize >= max {
            return Ok(false);
        }
        tx.execute(
            &format!(
                "INSERT INTO healthweb_maintenance ({WINDOW}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            &[
                &w.id,
                &w.services,
                &w.start_ms,
                &w.end_ms,
                &w.reason,
                &w.replica,
                &w.created_ms,
            ],
        )
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(true)
    }

    async fn end_window(&self, id: &str, at_ms: i64) -> Result<Option<AdHocWindow>, StoreError> {
        let fail = |e: tokio_postgres::Error| self.error(&e);
        let client = self.client().await?;
        client
            .execute(
                "UPDATE healthweb_maintenance SET end_ms = greatest($2, start_ms)
                 WHERE id = $1 AND end_ms > $2",
                &[&id, &at_ms],
            )
            .await
            .map_err(fail)?;
        Ok(client
            .query_opt(
                &format!("SELECT {WINDOW} FROM healthweb_maintenance WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(fail)?
            .as_ref()
            .map(window))
    }

    async fn prune_alerts(&self, before_ms: i64) -> Result<(), StoreError> {
        let fail = |e: tokio_postgres::Error| self.error(&e);
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM healthweb_outbox WHERE state <> 'pending' AND created_ms < $1",
                &[&before_ms],
            )
            .await
            .map_err(fail)?;
        client
            .execute(
                "DELETE FROM healthweb_maintenance WHERE end_ms < $1",
                &[&before_ms],
            )
            .await
            .map_err(fail)?;
        Ok(())
    }
}
