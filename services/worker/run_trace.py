"""The span of one run's execution, continuing the trace of what queued the run.

A span cannot be reopened in another process, so each execution of a run (an attempt, or its
resumption after a lost lease) is one span, child of the context `run.queued` was appended in,
and each starts at the run's queued time: the last one spans the whole run, from `run.queued`
to its end, across processes and retries.
"""

from __future__ import annotations

import contextlib
from typing import Any

import asyncpg

from domain.envelope import EventMeta
from domain.events import run_stream
from services.runtime import tracing
from services.worker.leases import LeasedRun

_CAUSE = """
SELECT meta->>'traceparent' AS traceparent, meta->>'tracestate' AS tracestate, recorded_at
FROM events WHERE stream = $1 AND type = 'run.queued' ORDER BY version LIMIT 1
"""


async def run_span(
    pool: asyncpg.Pool, run: LeasedRun, worker: str
) -> contextlib.AbstractContextManager[Any]:
    """The span to execute ``run`` in (a no-op when tracing is off: no query either)."""
    if not tracing.enabled():
        return contextlib.nullcontext()
    row = await pool.fetchrow(_CAUSE, run_stream(run.run_id))
    parent = None
    if row is not None and row["traceparent"]:
        parent = EventMeta(actor="", correlation_id="", traceparent=row["traceparent"],
                           tracestate=row["tracestate"])  # fmt: skip
    attributes: tracing.Attributes = {
        "ordinaut.run.id": run.run_id,
        "ordinaut.task.id": run.task_id,
        "ordinaut.run.attempt": run.attempt,
        "ordinaut.run.trigger": run.trigger,
        "ordinaut.worker": worker,
    }
    return tracing.span(
        "ordinaut.run", attributes, kind="consumer", parent=parent,
        start_time=row["recorded_at"] if row is not None else None,
    )  # fmt: skip
