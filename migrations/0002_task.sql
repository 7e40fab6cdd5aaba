-- Read model of tasks, maintained only by projections/task.py.
CREATE TABLE task (
    id            TEXT PRIMARY KEY,
    key           TEXT,
    title         TEXT        NOT NULL,
    schedule_kind TEXT        NOT NULL,
    schedule_expr TEXT        NOT NULL,
    timezone      TEXT        NOT NULL,
    priority      SMALLINT    NOT NULL,
    definition    JSONB       NOT NULL,
    status        TEXT        NOT NULL CHECK (status IN ('active', 'paused', 'canceled', 'completed')),
    deleted       BOOLEAN     NOT NULL DEFAULT false,
    next_run_at   TIMESTAMPTZ,
    created_by    TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    version       INTEGER     NOT NULL
);

-- A caller-chosen key names at most one live task per agent.
CREATE UNIQUE INDEX task_owner_key ON task (created_by, key) WHERE key IS NOT NULL AND NOT deleted;
-- The timer only ever looks at the earliest due active tasks.
CREATE INDEX task_due ON task (next_run_at) WHERE status = 'active' AND NOT deleted;
CREATE INDEX task_created ON task (created_at, id);

-- Its checkpoint row; appends only ever UPDATE checkpoints.
INSERT INTO projection_checkpoints (name) VALUES ('task');
