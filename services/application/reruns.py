"""Re-running a finished run from one of its steps (rules: domain/reruns.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from domain.events import RunQueued, TaskDefinition, run_stream
from domain.reruns import decide_rerun
from projections.base import Connection
from services.application.context import Backend, Caller
from services.application.errors import Conflict
from services.application.runs import RunView, load_run, view_of
from services.store.events import StreamAppend, append_in_transaction


class Rerun(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where the re-run starts: this step and every one after it run again; the steps
    before it keep the original run's outputs."""

    from_step: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


# The task's definition as it was when the run was queued: its last created/updated event
# before the run's first event.
_ORIGINAL_PIPELINE = """
SELECT data->'definition'->'payload'->'pipeline' AS pipeline FROM events
WHERE stream = 'task-' || $1 AND type IN ('task.created', 'task.updated')
  AND position < (SELECT min(position) FROM events WHERE stream = 'run-' || $2)
ORDER BY position DESC LIMIT 1
"""
_TASK = "SELECT definition::text AS definition, deleted FROM task WHERE id = $1"
_json = msgspec.json.Decoder()
_queued = msgspec.json.Decoder(RunQueued)
_definition = msgspec.json.Decoder(TaskDefinition)


async def rerun(caller: Caller, backend: Backend, run_id: str, body: Rerun) -> RunView:
    """Start a new run of the run's task from ``from_step``; both runs name each other."""
    new_run_id = str(uuid.uuid4())
    async with backend.pool.acquire() as conn, conn.transaction():
        # No lock to take: only a finished run is re-run (decide_rerun), so nothing else
        # appends to it, and the new run's stream must be new (expected_version=0).
        row = await load_run(conn, caller.principal, run_id)
        old, new = await _pipelines(conn, row["task_id"], run_id)
        events, note = decide_rerun(
            _queued.decode(row["queued"]),
            row["status"],
            _json.decode(row["steps"]),
            old,
            new,
            body.from_step,
            new_run_id,
            datetime.now(UTC),
        )
        meta = msgspec.structs.replace(caller.meta(), causation_id=run_id)
        appends = [
            StreamAppend(run_stream(new_run_id), events, expected_version=0),
            StreamAppend(run_stream(run_id), [note]),
        ]
        await append_in_transaction(conn, appends, meta, backend.projections)
        view = view_of(await load_run(conn, caller.principal, new_run_id))
    await backend.announce([new_run_id])
    return view


async def _pipelines(
    conn: Connection, task_id: str, run_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pipeline the run was queued with, and the task's current one."""
    task = await conn.fetchrow(_TASK, task_id)
    if task is None or task["deleted"]:
        raise Conflict("the run's task was deleted: there is nothing to re-run")
    current = _definition.decode(task["definition"]).payload.get("pipeline", [])
    original = await conn.fetchval(_ORIGINAL_PIPELINE, task_id, run_id)
    return (_json.decode(original) if original else []), list(current)
