-- Workers say they are alive here every few seconds. This is operational state, written
-- directly by each worker, not a read model: nothing about it is worth replaying, and a
-- heartbeat per worker every few seconds would only bloat the event log.
CREATE TABLE worker_presence (
    name        TEXT PRIMARY KEY,
    host        TEXT        NOT NULL,
    pid         INTEGER     NOT NULL,
    concurrency INTEGER     NOT NULL,
    running     INTEGER     NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL
);
