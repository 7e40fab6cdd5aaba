-- Runs: one row per run, maintained only by projections/rules/runs.py.
CREATE TABLE runs (
    run_id           TEXT PRIMARY KEY,
    task_id          TEXT        NOT NULL,
    owner            TEXT        NOT NULL,
    status           TEXT        NOT NULL CHECK (status IN ('queued', 'running', 'awaiting_approval',
                                 'succeeded', 'dead', 'canceled', 'deduplicated')),
    trigger          TEXT        NOT NULL,
    attempt          INTEGER     NOT NULL,
    priority         SMALLINT    NOT NULL,
    scheduled_for    TIMESTAMPTZ NOT NULL,
    run_at           TIMESTAMPTZ NOT NULL,
    queued_at        TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    worker           TEXT,
    error            TEXT,
    dedupe_key       TEXT,
    concurrency_key  TEXT,
    cancel_requested BOOLEAN     NOT NULL DEFAULT false,
    -- The queueing event (flow control, trigger event), kept for retries.
    queued           JSONB       NOT NULL,
    -- step path -> {status, tool, input, output, error, duration_ms, attempt, at}
    steps            JSONB       NOT NULL DEFAULT '{}',
    -- the pending or last decided approval: {step_id, message, data, expires_at, status, ...}
    approval         JSONB,
    version          INTEGER     NOT NULL
);

CREATE INDEX runs_task ON runs (task_id, queued_at DESC);
CREATE INDEX runs_status ON runs (status, queued_at DESC);
CREATE INDEX runs_queued ON runs (queued_at DESC, run_id);
-- The timer's promise, now kept on runs: an occurrence of a task becomes a run at most once.
CREATE UNIQUE INDEX runs_occurrence ON runs (task_id, scheduled_for) WHERE trigger = 'schedule';
-- Dedupe looks for a recent run with the same key.
CREATE INDEX runs_dedupe ON runs (dedupe_key, started_at) WHERE dedupe_key IS NOT NULL;

-- due_work now follows run events: flow control rides along so leasing needs no join.
-- Runs asked for at the same instant (run_now, events) are distinct work.
ALTER TABLE due_work DROP CONSTRAINT due_work_occurrence;
ALTER TABLE due_work
    ADD COLUMN max_concurrency       INTEGER NOT NULL DEFAULT 1,
    ADD COLUMN dedupe_key            TEXT,
    ADD COLUMN dedupe_window_seconds INTEGER,
    -- true while the run waits for an approval; run_at is then the approval's deadline
    ADD COLUMN parked                BOOLEAN NOT NULL DEFAULT false;

-- Leases: the earliest ready work by urgency; concurrency checks by key.
CREATE INDEX due_work_key ON due_work (concurrency_key, locked_until) WHERE concurrency_key IS NOT NULL;

INSERT INTO projection_checkpoints (name) VALUES ('runs');
