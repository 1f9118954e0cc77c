-- healthweb's history, version 2: each row carries an event id, so that a write
-- retried after an unacknowledged commit updates the row instead of doubling it
-- (and a folded row that took more changes is written again in place), and the
-- replica that saw the change.

ALTER TABLE transitions ADD COLUMN event_id TEXT;
ALTER TABLE transitions ADD COLUMN replica TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX transitions_by_event ON transitions (event_id);
