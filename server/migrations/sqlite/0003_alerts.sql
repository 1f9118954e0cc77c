-- healthweb's history, version 3: alerts. The alerts that fire now (one row per
-- rule and service), the outbox of notifications (written with the state that
-- caused them, in one transaction; delivered by the sender, retried, then marked
-- delivered or failed), and the maintenance windows opened through the admin API.

CREATE TABLE alert_states (
    rule        TEXT    NOT NULL,
    service     TEXT    NOT NULL,
    alert_id    TEXT    NOT NULL,             -- shared by the alert's notifications
    status      INTEGER NOT NULL,             -- the bad status it fired for
    previous    INTEGER NOT NULL,             -- the status before it went bad
    since_ms    INTEGER NOT NULL,             -- bad since
    fired_ms    INTEGER NOT NULL,
    reminded_ms INTEGER NOT NULL,             -- the last notification (firing or reminder)
    reminders   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rule, service)
) WITHOUT ROWID;

CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT    NOT NULL,             -- the notification's id, the same on every retry
    receiver    TEXT    NOT NULL,
    service     TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,             -- firing, reminder, resolved
    payload     TEXT    NOT NULL,             -- the notification (JSON, healthweb.alert.v1)
    created_ms  INTEGER NOT NULL,
    deadline_ms INTEGER NOT NULL,             -- retried until then, then failed
    due_ms      INTEGER NOT NULL,             -- the next attempt
    attempts    INTEGER NOT NULL DEFAULT 0,
    state       TEXT    NOT NULL DEFAULT 'pending', -- pending, delivered, failed
    last_ms     INTEGER NOT NULL DEFAULT 0,   -- the last attempt
    outcome     TEXT    NOT NULL DEFAULT '',  -- what the receiver said, or the error
    UNIQUE (event_id, receiver)
);
CREATE INDEX outbox_pending ON outbox (receiver, state, id);
CREATE INDEX outbox_by_service ON outbox (service, id);

CREATE TABLE maintenance (
    id         TEXT    PRIMARY KEY,
    services   TEXT    NOT NULL,              -- a JSON array of names and glob patterns
    start_ms   INTEGER NOT NULL,
    end_ms     INTEGER NOT NULL,
    reason     TEXT    NOT NULL DEFAULT '',
    replica    TEXT    NOT NULL DEFAULT '',   -- where it was opened
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
