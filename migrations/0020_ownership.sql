-- Issue 18: the admin keeps control of agents, and agents read only their own events.

-- agent.version is the agent stream's version again: agent.limits_set used to leave it behind,
-- so every later command on the agent failed its expected-version check.
UPDATE agent a SET version = s.version
FROM (SELECT stream, max(version) AS version FROM events
      WHERE stream LIKE 'agent-%' GROUP BY stream) s
WHERE s.stream = 'agent-' || a.id AND a.version <> s.version;

-- Maintained only by projections/ownership.py (rules: domain/ownership.py).
CREATE TABLE stream_owner (
    stream TEXT PRIMARY KEY,
    owner  TEXT NOT NULL
);

-- One row per event an agent (not the admin) owns: an agent's reads of the log are a range
-- scan of (owner, position), so pages stay full and position cursors stay valid.
CREATE TABLE event_owner (
    owner    TEXT   NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (owner, position)
);

-- The existing log, filed by the same rules as the projection.
INSERT INTO stream_owner (stream, owner)
SELECT DISTINCT ON (stream) stream,
       CASE type
           WHEN 'task.created' THEN meta->>'actor'
           WHEN 'tool.registered' THEN meta->>'actor'
           WHEN 'run.queued' THEN data->>'owner'
           WHEN 'agent.created' THEN data->>'agent_id'
           WHEN 'secret.stored' THEN coalesce(data->>'owner', 'admin')
           ELSE data->>'agent_id'  -- webhook.attempted, .delivered, .failed
       END
FROM events
WHERE type IN ('task.created', 'tool.registered', 'run.queued', 'agent.created', 'secret.stored',
               'webhook.attempted', 'webhook.delivered', 'webhook.failed')
ORDER BY stream, position;

INSERT INTO stream_owner (stream, owner)
SELECT DISTINCT e.stream, t.owner
FROM events e JOIN stream_owner t ON t.stream = 'task-' || (e.data->>'task_id')
WHERE e.type = 'condition.evaluated'
ON CONFLICT DO NOTHING;

-- An opening event belongs to the owner it names (a tool re-registered by someone else is
-- theirs); an external event to its publisher; any other to its stream's owner.
INSERT INTO event_owner (owner, position)
SELECT owner, position FROM (
    SELECT e.position,
           CASE e.type
               WHEN 'event.received' THEN e.meta->>'actor'
               WHEN 'task.created' THEN e.meta->>'actor'
               WHEN 'tool.registered' THEN e.meta->>'actor'
               WHEN 'run.queued' THEN e.data->>'owner'
               WHEN 'agent.created' THEN e.data->>'agent_id'
               WHEN 'secret.stored' THEN coalesce(e.data->>'owner', 'admin')
               WHEN 'webhook.attempted' THEN e.data->>'agent_id'
               WHEN 'webhook.delivered' THEN e.data->>'agent_id'
               WHEN 'webhook.failed' THEN e.data->>'agent_id'
               ELSE s.owner
           END AS owner
    FROM events e LEFT JOIN stream_owner s ON s.stream = e.stream
) filed
WHERE owner IS NOT NULL AND owner <> 'admin';

INSERT INTO projection_checkpoints (name, position)
SELECT 'ownership', coalesce(max(position), 0) FROM events;
