-- Durable waits, re-runs and debounce (issue 22).

-- A run parked at orchestrator.wait_for_event or orchestrator.sleep is 'waiting': it holds no
-- lease; its due_work row (parked) is due at the wait's deadline, if it has one.
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check CHECK (status IN ('queued', 'running',
    'awaiting_approval', 'waiting', 'deferred', 'succeeded', 'dead', 'canceled', 'deduplicated'));

ALTER TABLE runs
    -- the pending or last ended wait: {step_id, kind, topic, filter, until, status, ...}
    ADD COLUMN wait         JSONB,
    -- a re-run names the run it repeats; the original lists its re-runs
    ADD COLUMN rerun_of     TEXT,
    ADD COLUMN reruns       JSONB NOT NULL DEFAULT '[]',
    -- a debounced event task's owner-scoped key, while its run collects events
    ADD COLUMN debounce_key TEXT;

-- Every published event looks for the runs waiting for its topic.
CREATE INDEX runs_waiting ON runs ((wait->>'topic')) WHERE status = 'waiting';
-- Every event of a debounced task looks for the run still collecting its key's events.
CREATE INDEX runs_debouncing ON runs (task_id, debounce_key)
    WHERE debounce_key IS NOT NULL AND started_at IS NULL;
