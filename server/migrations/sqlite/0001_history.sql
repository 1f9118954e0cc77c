-- healthweb's history, version 1: every status change, the upstream monitor's
-- probe latency a minute at a time, and a few facts about the store itself.

CREATE TABLE transitions (
    id          INTEGER PRIMARY KEY,
    service     TEXT    NOT NULL,
    at_ms       INTEGER NOT NULL,             -- Unix milliseconds
    until_ms    INTEGER NOT NULL,             -- = at_ms, or the last folded change
    from_status INTEGER NOT NULL,             -- grpc.health.v1 ServingStatus
    to_status   INTEGER NOT NULL,
    worst       INTEGER NOT NULL,             -- the worst status among folded changes
    cause       INTEGER NOT NULL,             -- healthweb.v1.Cause
    detail      TEXT    NOT NULL DEFAULT '',
    count       INTEGER NOT NULL DEFAULT 1    -- changes this row stands for
);
CREATE INDEX transitions_by_service ON transitions (service, at_ms);

CREATE TABLE latency (
    service   TEXT    NOT NULL,
    minute_ms INTEGER NOT NULL,               -- the minute's start, Unix milliseconds
    probes    INTEGER NOT NULL,
    p50_ms    REAL    NOT NULL,
    p99_ms    REAL    NOT NULL,
    max_ms    REAL    NOT NULL,
    PRIMARY KEY (service, minute_ms)
) WITHOUT ROWID;

-- alive_ms: the writer's last sign of life; clean: 1 after a clean stop.
CREATE TABLE meta (
    key   TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
