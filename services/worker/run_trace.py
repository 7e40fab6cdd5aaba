"""The span of one run's execution, continuing the trace of what queued the run.

A span cannot be reopened in another process, so each execution of a run (an attempt, or its
resumption after a lost lease) is one span, child of the context `run.queued` was appended in,
and each starts at the run's queued time: the last one spans the whole run, from `run.queued`
to its end, across processes and retries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from domain.envelope import EventMeta
from domain.events import run_stream
from projections.base import Connection
from services.pipeline.run import LeasedRun
from services.runtime import tracing

_CAUSES = """
SELECT DISTINCT ON (stream) stream, meta->>'traceparent' AS traceparent,
       meta->>'tracestate' AS tracestate, recorded_at
FROM events WHERE stream = ANY($1::text[]) AND type = 'run.queued'
ORDER BY stream, version
"""


class _Cause(NamedTuple):
    parent: EventMeta | None
    queued_at: datetime


class RunTraces:
    """Where each leased run's trace continues from: read once per lease batch, on the lease's
    connection (one query per batch, not per run), and only while tracing."""

    def __init__(self) -> None:
        self._causes: dict[str, _Cause] = {}

    async def fetch(self, conn: Connection, runs: Sequence[LeasedRun]) -> None:
        """Read the causes of ``runs`` (nothing when tracing is off)."""
        if not tracing.enabled() or not runs:
            return
        rows = await conn.fetch(_CAUSES, [run_stream(run.run_id) for run in runs])
        for row in rows:
            parent = None
            if row["traceparent"]:
                parent = EventMeta(
                    actor="",
                    correlation_id="",
                    traceparent=row["traceparent"],
                    tracestate=row["tracestate"],
                )
            self._causes[row["stream"].removeprefix("run-")] = _Cause(parent, row["recorded_at"])

    def span(self, run: LeasedRun, worker: str) -> contextlib.AbstractContextManager[Any]:
        """The span to execute ``run`` in (a no-op when tracing is off)."""
        cause = self._causes.pop(run.run_id, None)
        if not tracing.enabled():
            return contextlib.nullcontext()
        attributes: tracing.Attributes = {
            "ordinaut.run.id": run.run_id,
            "ordinaut.task.id": run.task_id,
            "ordinaut.run.attempt": run.attempt,
            "ordinaut.run.trigger": run.trigger,
            "ordinaut.worker": worker,
        }
        return tracing.span(
            "ordinaut.run",
            attributes,
            kind="consumer",
            parent=cause.parent if cause is not None else None,
            start_time=cause.queued_at if cause is not None else None,
        )
