"""The runs debounced event tasks are still collecting events into, read in the publish
transaction. Their due_work rows are locked there before a second read
(services/application/triggers.py), so a run a worker started is not found, and a lease skips
one being joined until it commits."""

from __future__ import annotations

from domain.debounce import Debouncing
from projections.base import Connection

_COLLECTING = """
SELECT task_id, run_id, queued->'event'->'debounce'->>'key' AS key,
       coalesce((queued->'event'->'debounce'->>'count')::int, 1) AS count
FROM runs
WHERE task_id = ANY($1::text[]) AND debounce_key IS NOT NULL AND started_at IS NULL
  AND status = 'queued'
"""


async def collecting_runs(conn: Connection, task_ids: list[str]) -> Debouncing:
    """(task, key) -> (run, events so far) for the given debounced tasks."""
    if not task_ids:
        return {}
    rows = await conn.fetch(_COLLECTING, task_ids)
    return {(r["task_id"], r["key"] or ""): (r["run_id"], r["count"]) for r in rows}
