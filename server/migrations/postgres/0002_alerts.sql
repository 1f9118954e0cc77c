-- healthweb's shared store, version 2: alerts, sent once by the fleet. The alerts
-- that fire now, the outbox of notifications (written with the state that caused
-- them in one transaction by the holder of the `alerts` lease, delivered by it,
-- claimed row by row so that no two replicas send one), and the maintenance
-- windows opened through any replica's admin API.

CREATE TABLE healthweb_alert_states (
    rule        TEXT    NOT NULL,
    service     TEXT    NOT NULL,
    alert_id    TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    previous    INTEGER NOT NULL,
    since_ms    BIGINT  NOT NULL,
    fired_ms    BIGINT  NOT NULL,
    reminded_ms BIGINT  NOT NULL,
    reminders   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rule, service)
);

CREATE TABLE healthweb_outbox (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       TEXT    NOT NULL,
    receiver       TEXT    NOT NULL,
    service        TEXT    NOT NULL,
    rule           TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    created_ms     BIGINT  NOT NULL,
    deadline_ms    BIGINT  NOT NULL,
    due_ms         BIGINT  NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    state          TEXT    NOT NULL DEFAULT 'pending',
    last_ms        BIGINT  NOT NULL DEFAULT 0,
    outcome        TEXT    NOT NULL DEFAULT '',
    -- Who is sending it now, and until when (the database's clock): another
    -- replica takes it only once the claim has expired.
    claimed_by     TEXT    NOT NULL DEFAULT '',
    claimed_until  TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    UNIQUE (event_id, receiver)
);
CREATE INDEX healthweb_outbox_pending ON healthweb_outbox (receiver, state, id);
CREATE INDEX healthweb_outbox_by_service ON healthweb_outbox (service, id);

CREATE TABLE healthweb_maintenance (
    id         TEXT    PRIMARY KEY,
    services   TEXT[]  NOT NULL,
    start_ms   BIGINT  NOT NULL,
    end_ms     BIGINT  NOT NULL,
    reason     TEXT    NOT NULL DEFAULT '',
    replica    TEXT    NOT NULL DEFAULT '',
    created_ms BIGINT  NOT NULL
);
