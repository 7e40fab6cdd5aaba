-- Work that is due (or will be, after jitter or backoff): one row per run, maintained by
-- projections/due_work.py. Workers lease rows; a lease expires by itself.
CREATE TABLE due_work (
    run_id          TEXT PRIMARY KEY,
    task_id         TEXT        NOT NULL,
    scheduled_for   TIMESTAMPTZ NOT NULL,
    run_at          TIMESTAMPTZ NOT NULL,
    priority        SMALLINT    NOT NULL,
    concurrency_key TEXT,
    attempt         INTEGER     NOT NULL DEFAULT 1,
    locked_by       TEXT,
    locked_until    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    -- The timer's promise: an occurrence of a task becomes work at most once.
    CONSTRAINT due_work_occurrence UNIQUE (task_id, scheduled_for)
);

-- Workers lease by urgency, then age.
CREATE INDEX due_work_ready ON due_work (priority, run_at);

INSERT INTO projection_checkpoints (name) VALUES ('due_work');
