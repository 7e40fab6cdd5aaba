-- Governance read models: agents' limits, and what tool calls cost per task and agent per day.

-- A run waiting out quiet hours is 'deferred' (its due_work row is due when they end).
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check CHECK (status IN ('queued', 'running',
    'awaiting_approval', 'deferred', 'succeeded', 'dead', 'canceled', 'deduplicated'));

-- Maintained only by projections/rules/agent_limits.py (agent.limits_set replaces the row).
CREATE TABLE agent_limits (
    agent_id       TEXT PRIMARY KEY,
    budget_per_day DOUBLE PRECISION,
    quiet_hours    JSONB       NOT NULL DEFAULT '[]',
    timezone       TEXT        NOT NULL DEFAULT 'UTC',
    rate_limits    JSONB       NOT NULL DEFAULT '{}',
    updated_at     TIMESTAMPTZ NOT NULL
);

-- Maintained only by projections/spend.py from the costs recorded on run.step_succeeded.
-- scope 'task': subject is a task id, day its local date; 'agent': an agent id, UTC date.
CREATE TABLE spend (
    scope   TEXT    NOT NULL CHECK (scope IN ('task', 'agent')),
    subject TEXT    NOT NULL,
    day     DATE    NOT NULL,
    amount  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, subject, day)
);

INSERT INTO projection_checkpoints (name) VALUES ('agent_limits'), ('spend');
