-- Event and condition tasks: an event looks up only the live tasks of these kinds.
CREATE INDEX task_event_kinds ON task (schedule_kind)
    WHERE status = 'active' AND NOT deleted AND schedule_kind IN ('event', 'condition');

-- What each condition task remembers between events, maintained only by
-- projections/rules/condition.py from condition.evaluated events.
CREATE TABLE condition_state (
    task_id      TEXT PRIMARY KEY,
    value        BOOLEAN     NOT NULL,
    payload      JSONB       NOT NULL,
    event_id     TEXT        NOT NULL,
    evaluated_at TIMESTAMPTZ NOT NULL
);

INSERT INTO projection_checkpoints (name) VALUES ('condition');
