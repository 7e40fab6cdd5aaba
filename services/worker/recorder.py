"""Records what running pipelines did, many runs per transaction (group commit).

Every record is fenced by the lease: events are appended only for runs this worker still
holds, checked with the runs' due_work rows locked (``_HELD``), the rows a takeover must lock
to lease them. A worker that lost a run (its lease lapsed and another worker took over) learns
so here and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import asyncpg
import msgspec
import structlog

from domain.envelope import EventMeta
from domain.events import ApprovalRequested, Event, RunWaiting, run_stream
from domain.runs import ended_with_task
from projections.base import Connection, ProjectionSet
from services.pipeline.recording import RecordOutcome, RecordRejected
from services.runtime import tracing
from services.store.events import (
    Command,
    StreamAppend,
    append_in_transaction,
    insert_commands,
)

# FOR UPDATE OF d: a run's due_work row is where everything that appends to a run meets
# (leasers skip it, a cancel waits for it), so the lease cannot move between this check and the
# append; in run_id order, so two flushes never deadlock.
_HELD = """
SELECT d.run_id, r.cancel_requested FROM due_work d JOIN runs r USING (run_id)
WHERE d.run_id = ANY($1::text[]) AND d.locked_by = $2
ORDER BY d.run_id
FOR UPDATE OF d
"""
# The tasks of runs about to park, share-locked: a task's cancel or delete locks its row before
# it looks for parked runs to end (services/application/task_store.py), so a run parks either
# before that look (and is ended by it) or after the task ended (and ends here instead).
_PARKING_TASKS = """
SELECT r.run_id, t.status = 'canceled' OR t.deleted AS ended, t.deleted
FROM runs r JOIN task t ON t.id = r.task_id
WHERE r.run_id = ANY($1::text[])
ORDER BY t.id
FOR SHARE OF t
"""
# Enough to amortise a transaction over many runs, small enough to keep the lock short.
MAX_BATCH = 500

log = structlog.get_logger(__name__)


@dataclass
class _Pending:
    run_id: str
    events: list[Event]
    done: asyncio.Future[RecordOutcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    # Taken in the run's own task: its events continue the run's trace (None: tracing off).
    traceparent: str | None = field(default_factory=tracing.current_traceparent)


class Recorder:
    """Collects run events from many concurrent runs and appends them in few transactions."""

    def __init__(self, pool: asyncpg.Pool, projections: ProjectionSet, worker: str) -> None:
        self.pool, self.projections, self.worker = pool, projections, worker
        self._queue: list[_Pending] = []
        self._ready = asyncio.Event()

    async def record(self, run_id: str, events: list[Event]) -> RecordOutcome:
        """Append ``events`` to the run's stream once they are committed (or not, if fenced)."""
        pending = _Pending(run_id, events)
        self._queue.append(pending)
        self._ready.set()
        return await pending.done

    async def run(self, stop: asyncio.Event) -> None:
        """Flush whatever is queued, one transaction at a time, until stopped and drained."""
        while True:
            if not self._queue:
                if stop.is_set():
                    return
                self._ready.clear()
                waiting = asyncio.create_task(self._ready.wait())
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                for task in (waiting, stopping):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                continue
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            await self._record_batch(batch)

    async def _record_batch(self, batch: list[_Pending]) -> None:
        """Record a batch in one transaction; if that fails for a reason other than the
        store, record its runs one by one, so only the run whose events broke it fails."""
        try:
            _settle(batch, await self._flush(batch))
            return
        except Exception as exc:
            if storage_failure(exc) or len(batch) == 1:
                _log_failure(exc, batch)
                _fail(batch, exc)
                if storage_failure(exc):
                    await asyncio.sleep(0.1)  # the runs retry later, on a later lease
                return
            log.warning(
                "recording a batch failed; recording its runs one by one",
                error=f"{type(exc).__name__}: {exc}",
                runs=len(batch),
            )
        for pending in batch:
            try:
                _settle([pending], await self._flush([pending]))
            except Exception as exc:
                _log_failure(exc, [pending])
                _fail([pending], exc)

    async def _flush(self, batch: list[_Pending]) -> list[RecordOutcome]:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_HELD, [p.run_id for p in batch], self.worker)
            held = {r["run_id"]: r["cancel_requested"] for r in rows}
            await _end_parking_runs_of_ended_tasks(conn, [p for p in batch if p.run_id in held])
            appends = [
                StreamAppend(run_stream(p.run_id), p.events) for p in batch if p.run_id in held
            ]
            if appends and tracing.enabled():  # one command per run, each with its trace
                await insert_commands(conn, self._traced(batch, held), self.projections)
            elif appends:
                meta = EventMeta(actor=self.worker, correlation_id=self.worker)
                await append_in_transaction(conn, appends, meta, self.projections)
        return [
            RecordOutcome.LOST
            if p.run_id not in held
            else RecordOutcome.CANCEL_REQUESTED
            if held[p.run_id]
            else RecordOutcome.RECORDED
            for p in batch
        ]

    def _traced(self, batch: list[_Pending], held: dict[str, bool]) -> list[Command]:
        meta = EventMeta(actor=self.worker, correlation_id=self.worker)
        return [
            Command(
                [StreamAppend(run_stream(p.run_id), p.events)],
                msgspec.structs.replace(meta, traceparent=p.traceparent),
            )
            for p in batch
            if p.run_id in held
        ]


async def _end_parking_runs_of_ended_tasks(conn: Connection, batch: list[_Pending]) -> None:
    """A run that would park (for an event, a sleep or an approval) once its task was canceled
    or deleted ends instead: nothing would ever settle it (it holds no lease)."""
    parking = {p.run_id: p for p in batch if p.events and isinstance(p.events[-1], _PARKS)}
    if not parking:
        return
    for row in await conn.fetch(_PARKING_TASKS, list(parking)):
        if row["ended"]:
            pending = parking[row["run_id"]]
            ended = ended_with_task(pending.run_id, deleted=row["deleted"])
            pending.events = [*pending.events[:-1], ended]


_PARKS = (RunWaiting, ApprovalRequested)


# SQLSTATE classes that say the store (not the data) is in trouble: connection exceptions,
# operator intervention (shutdown), insufficient resources, system errors, rollbacks
# (deadlocks, serialization failures).
_STORAGE_SQLSTATES = ("08", "40", "53", "57", "58")


def storage_failure(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be used (a later try may work)."""
    if isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError):
        return True
    if isinstance(exc, asyncpg.InternalClientError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return str(getattr(exc, "sqlstate", "") or "")[:2] in _STORAGE_SQLSTATES
    return False


def _log_failure(exc: Exception, batch: list[_Pending]) -> None:
    # No traceback for events that cannot be encoded: a RecursionError's is thousands of
    # frames, and its runs record the error anyway.
    error = f"{type(exc).__name__}: {str(exc)[:300]}"
    if storage_failure(exc):
        log.warning("recording run events failed", error=error, runs=len(batch))
    elif isinstance(exc, RecursionError | TypeError | ValueError | asyncpg.PostgresError):
        log.warning("run events were rejected", error=error, run_id=batch[0].run_id)
    else:
        log.exception("run events were rejected", error=error, run_id=batch[0].run_id)


def _settle(batch: list[_Pending], outcomes: list[RecordOutcome]) -> None:
    for pending, outcome in zip(batch, outcomes, strict=True):
        if not pending.done.done():
            pending.done.set_result(outcome)


def _fail(batch: list[_Pending], exc: Exception) -> None:
    """A storage failure is passed on as it is; anything else rejects the events."""
    if not storage_failure(exc):
        rejected = RecordRejected(f"{type(exc).__name__}: {str(exc)[:300]}")
        rejected.__cause__ = exc
        exc = rejected
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(exc)
