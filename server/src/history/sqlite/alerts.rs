//! The alerts' tables in SQLite: one instance, so no lease fences them and no
//! claim is needed (the one sender is the only one).

use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use super::{Database, Sqlite, classify};
use crate::history::{
    StoreError,
    alert_store::{
        AdHocWindow, AlertState, AlertStore, Attempt, Commit, Delivery, Next, Notice, Outboxed,
    },
};

const OUTBOX: &str = "id, event_id, receiver, service, rule, kind, payload, created_ms, \
                      deadline_ms, due_ms, attempts, state, last_ms, outcome";

fn outboxed(r: &rusqlite::Row<'_>) -> rusqlite::Result<Outboxed> {
    Ok(Outboxed {
        id: r.get(0)?,
        notice: Notice {
            event: r.get(1)?,
            receiver: r.get(2)?,
            service: r.get(3)?,
            rule: r.get(4)?,
            kind: r.get(5)?,
            payload: r.get(6)?,
            created_ms: r.get(7)?,
            deadline_ms: r.get(8)?,
        },
        due_ms: r.get(9)?,
        attempts: r.get(10)?,
        state: Delivery::parse(&r.get::<_, String>(11)?),
        last_ms: r.get(12)?,
        outcome: r.get(13)?,
    })
}

fn window(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdHocWindow> {
    let services: String = r.get(1)?;
    Ok(AdHocWindow {
        id: r.get(0)?,
        services: serde_json::from_str(&services).unwrap_or_default(),
        start_ms: r.get(2)?,
        end_ms: r.get(3)?,
        reason: r.get(4)?,
        replica: r.get(5)?,
        created_ms: r.get(6)?,
    })
}

const WINDOW: &str = "id, services, start_ms, end_ms, reason, replica, created_ms";

impl Database {
    fn alert_states(&mut self) -> Result<Vec<AlertState>, StoreError> {
        let mut query = self
            .connection
            .prepare_cached(
                "SELECT rule, service, alert_id, status, previous, since_ms, fired_ms,
                   reminded_ms, reminders FROM alert_states",
            )
            .map_err(|e| classify(&self.name, e))?;
        query
            .query_map([], |r| {
                Ok(AlertState {
                    rule: r.get(0)?,
                    service: r.get(1)?,
                    alert_id: r.get(2)?,
                    status: r.get(3)?,
                    previous: r.get(4)?,
                    since_ms: r.get(5)?,
                    fired_ms: r.get(6)?,
                    reminded_ms: r.get(7)?,
                    reminders: r.get(8)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(|e| classify(&self.name, e))
    }

    fn commit_alerts(&mut self, commit: &Commit) -> Result<(), StoreError> {
        let name = self.name.clone();
        let fail = |e| classify(&name, e);
        let tx = self.connection.transaction().map_err(fail)?;
        for s in &commit.set {
            tx.prepare_cached(
                "INSERT INTO alert_states (rule, service, alert_id, status, previous, since_ms,
                   fired_ms, reminded_ms, reminders)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (rule, service) DO UPDATE SET alert_id = excluded.alert_id,
                   status = excluded.status, previous = excluded.previous,
                   since_ms = excluded.since_ms, fired_ms = excluded.fired_ms,
                   reminded_ms = excluded.reminded_ms, reminders = excluded.reminders",
            )
            .and_then(|mut q| {
                q.execute(params![
                    s.rule,
                    s.service,
                    s.alert_id,
                    s.status,
                    s.previous,
                    s.since_ms,
                    s.fired_ms,
                    s.reminded_ms,
                    s.reminders
                ])
            })
            .map_err(fail)?;
        }
        for (rule, service) in &commit.clear {
            tx.execute(
                "DELETE FROM alert_states WHERE rule = ?1 AND service = ?2",
                params![rule, service],
            )
            .map_err(fail)?;
        }
        for n in &commit.notices {
            tx.prepare_cached(
                "INSERT INTO outbox (event_id, receiver, service, rule, kind, payload,
                   created_ms, deadline_ms, due_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7)
                 ON CONFLICT (event_id, receiver) DO NOTHING",
            )
            .and_then(|mut q| {
                q.execute(params![
                    n.event,
                    n.receiver,
                    n.service,
                    n.rule,
                    n.kind,
                    n.payload,
                    n.created_ms,
                    n.deadline_ms
                ])
            })
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)
    }

    fn next_notice(&mut self, receiver: &str, now_ms: i64) -> Result<Next, StoreError> {
        let name = self.name.clone();
        let fail = |e| classify(&name, e);
        let found = self
            .connection
            .prepare_cached(&format!(
                "SELECT {OUTBOX} FROM outbox o
                 WHERE receiver = ?1 AND state = 'pending' AND due_ms <= ?2
                   AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.receiver = o.receiver
                     AND e.service = o.service AND e.state = 'pending' AND e.id < o.id)
                 ORDER BY id LIMIT 1"
            ))
            .map_err(fail)?
            .query_row(params![receiver, now_ms], outboxed)
            .optional()
            .map_err(fail)?;
        if let Some(found) = found {
            return Ok(Next::Claimed(Box::new(found)));
        }
        let due: Option<i64> = self
            .connection
            .query_row(
                "SELECT min(due_ms) FROM outbox WHERE receiver = ?1 AND state = 'pending'",
                [receiver],
                |r| r.get(0),
            )
            .map_err(fail)?;
        Ok(Next::Idle(due))
    }

    fn record_attempt(&mut self, a: &Attempt) -> Result<(), StoreError> {
        self.connection
            .execute(
                "UPDATE outbox SET attempts = ?2, state = ?3, due_ms = ?4, last_ms = ?5,
                   outcome = ?6 WHERE id = ?1",
                params![
                    a.id,
                    a.attempts,
                    a.state.as_str(),
                    a.due_ms,
                    a.last_ms,
                    a.outcome
                ],
            )
            .map(drop)
            .map_err(|e| classify(&self.name, e))
    }

    fn recent_notices(&mut self, since_ms: i64) -> Result<Vec<Outboxed>, StoreError> {
        let name = self.name.clone();
        self.connection
            .prepare_cached(&format!(
                "SELECT {OUTBOX} FROM outbox WHERE id IN (
                   SELECT max(id) FROM outbox WHERE created_ms >= ?1 GROUP BY service)
                   OR state = 'pending'
                 ORDER BY id"
            ))
            .and_then(|mut q| {
                q.query_map([since_ms], outboxed)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| classify(&name, e))
    }

    fn windows(&mut self, since_ms: i64) -> Result<Vec<AdHocWindow>, StoreError> {
        let name = self.name.clone();
        self.connection
            .prepare_cached(&format!(
                "SELECT {WINDOW} FROM maintenance WHERE end_ms >= ?1 ORDER BY start_ms, id"
            ))
            .and_then(|mut q| {
                q.query_map([since_ms], window)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| classify(&name, e))
    }

    fn add_window(&mut self, w: &AdHocWindow, max: usize) -> Result<bool, StoreError> {
        let name = self.name.clone();
        let fail = |e| classify(&name, e);
        let tx = self.connection.transaction().map_err(fail)?;
        let open: i64 = tx
            .query_row(
                "SELECT count(*) FROM maintenance WHERE end_ms > ?1",
                [w.start_ms],
                |r| r.get(0),
            )
            .map_err(fail)?;
        if open as usize >= max {
            return Ok(false);
        }
        let services = serde_json::to_string(&w.services).unwrap_or_default();
        tx.execute(
            &format!("INSERT INTO maintenance ({WINDOW}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
            params![
                w.id,
                services,
                w.start_ms,
                w.end_ms,
                w.reason,
                w.replica,
                w.created_ms
            ],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(true)
    }

    fn end_window(&mut self, id: &str, at_ms: i64) -> Result<Option<AdHocWindow>, StoreError> {
        let name = self.name.clone();
        let fail = |e| classify(&name, e);
        self.connection
            .execute(
                "UPDATE maintenance SET end_ms = max(?2, start_ms) WHERE id = ?1 AND end_ms > ?2",
                params![id, at_ms],
            )
            .map_err(fail)?;
        self.connection
            .query_row(
                &format!("SELECT {WINDOW} FROM maintenance WHERE id = ?1"),
                [id],
                window,
            )
            .optional()
            .map_err(fail)
    }

    fn prune_alerts(&mut self, before_ms: i64) -> Result<(), StoreError> {
        let name = self.name.clone();
        let fail = |e| classify(&name, e);
        self.connection
            .execute(
                "DELETE FROM outbox WHERE state <> 'pending' AND created_ms < ?1",
                [before_ms],
            )
            .map_err(fail)?;
        self.connection
            .execute("DELETE FROM maintenance WHERE end_ms < ?1", [before_ms])
            .map(drop)
            .map_err(fail)
    }
}

#[async_trait::async_trait]
impl AlertStore for Sqlite {
    async fn lead(&self, _period: Duration) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn alert_states(&self) -> Result<Vec<AlertState>, StoreError> {
        self.run(Database::alert_states).await
    }

    async fn commit_alerts(&self, commit: &Commit) -> Result<bool, StoreError> {
        let commit = commit.clone();
        self.run(move |db| db.commit_alerts(&commit)).await?;
        Ok(true)
    }

    async fn next_notice(
        &self,
        receiver: &str,
        now_ms: i64,
        _claim: Duration,
    ) -> Result<Next, StoreError> {
        let receiver = receiver.to_owned();
        self.run(move |db| db.next_notice(&receiver, now_ms)).await
    }

    async fn record_attempt(&self, attempt: &Attempt) -> Result<(), StoreError> {
        let attempt = attempt.clone();
        self.run(move |db| db.record_attempt(&attempt)).await
    }

    async fn recent_notices(&self, since_ms: i64) -> Result<Vec<Outboxed>, StoreError> {
        self.run(move |db| db.recent_notices(since_ms)).await
    }

    async fn windows(&self, since_ms: i64) -> Result<Vec<AdHocWindow>, StoreError> {
        self.run(move |db| db.windows(since_ms)).await
    }

    async fn add_window(&self, window: &AdHocWindow, max: usize) -> Result<bool, StoreError> {
        let window = window.clone();
        self.run(move |db| db.add_window(&window, max)).await
    }

    async fn end_window(&self, id: &str, at_ms: i64) -> Result<Option<AdHocWindow>, StoreError> {
        let id = id.to_owned();
        self.run(move |db| db.end_window(&id, at_ms)).await
    }

    async fn prune_alerts(&self, before_ms: i64) -> Result<(), StoreError> {
        self.run(move |db| db.prune_alerts(before_ms)).await
    }
}
