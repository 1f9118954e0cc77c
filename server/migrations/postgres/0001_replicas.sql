-- healthweb's shared store, version 1: the history every replica writes (each
-- change once, by the replica that saw it), the fleet-wide statuses they all
-- mirror, and what they coordinate with: who is alive, who probes what.
-- Every name starts with healthweb_, so the tables can live in an existing
-- database beside others.

-- Every status change: a row per change, or per fold of a flapping service's.
CREATE TABLE healthweb_transitions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    TEXT    NOT NULL UNIQUE,      -- the writer's instance id and counter
    replica     TEXT    NOT NULL,             -- who saw it (--replica-id)
    service     TEXT    NOT NULL,             -- '' is each replica's own whole server
    at_ms       BIGINT  NOT NULL,             -- Unix milliseconds
    until_ms    BIGINT  NOT NULL,             -- = at_ms, or the last folded change
    from_status INTEGER NOT NULL,             -- grpc.health.v1 ServingStatus
    to_status   INTEGER NOT NULL,
    worst       INTEGER NOT NULL,             -- the worst status among folded changes
    cause       INTEGER NOT NULL,             -- healthweb.v1.Cause
    detail      TEXT    NOT NULL DEFAULT '',
    count       BIGINT  NOT NULL DEFAULT 1    -- changes this row stands for
);
CREATE INDEX healthweb_transitions_by_service ON healthweb_transitions (service, at_ms);

-- Probe latency, a minute at a time, per replica that probed in that minute.
CREATE TABLE healthweb_latency (
    service   TEXT             NOT NULL,
    minute_ms BIGINT           NOT NULL,
    replica   TEXT             NOT NULL,
    probes    BIGINT           NOT NULL,
    p50_ms    DOUBLE PRECISION NOT NULL,
    p99_ms    DOUBLE PRECISION NOT NULL,
    max_ms    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (service, minute_ms, replica)
);

-- The fleet-wide statuses (every service but ''): what every replica serves.
-- A change is written here with its transition, in one transaction, and
-- announced with NOTIFY healthweb_status; status 3 (SERVICE_UNKNOWN) is a removal.
CREATE TABLE healthweb_statuses (
    service    TEXT    PRIMARY KEY,
    status     INTEGER NOT NULL,
    changed_ms BIGINT  NOT NULL,              -- an older change never overwrites a newer
    cause      INTEGER NOT NULL,
    detail     TEXT    NOT NULL DEFAULT '',
    replica    TEXT    NOT NULL
);

-- Every running healthweb process: alive while expires_at is ahead (renewed by
-- its heartbeat), with the upstreams its config names.
CREATE TABLE healthweb_replicas (
    instance   TEXT        PRIMARY KEY,       -- random, per process
    name       TEXT        NOT NULL,          -- --replica-id
    started_ms BIGINT      NOT NULL,
    alive_ms   BIGINT      NOT NULL,          -- the history writer's last sign of life
    expires_at TIMESTAMPTZ NOT NULL,
    clean      BOOLEAN     NOT NULL DEFAULT false,
    upstreams  TEXT[]      NOT NULL DEFAULT '{}'
);

-- Leases: a piece of work (upstream/NAME: probing that upstream) held by one
-- instance until expires_at, renewed by the holder; free once expired.
CREATE TABLE healthweb_leases (
    name       TEXT        PRIMARY KEY,
    holder     TEXT        NOT NULL,          -- healthweb_replicas.instance
    expires_at TIMESTAMPTZ NOT NULL
);

-- What the monitor saw last of each upstream (the JSON of GET /upstreams), from
-- the replica that probes it, so that every replica shows it.
CREATE TABLE healthweb_reports (
    service    TEXT   PRIMARY KEY,
    replica    TEXT   NOT NULL,
    report     TEXT   NOT NULL,
    updated_ms BIGINT NOT NULL
);
