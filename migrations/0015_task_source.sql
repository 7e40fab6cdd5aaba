-- `ordinaut apply --prune` looks up the open tasks a file made by their metadata.source label.
CREATE INDEX task_source ON task ((definition -> 'metadata' ->> 'source'))
    WHERE NOT deleted AND status IN ('active', 'paused');
