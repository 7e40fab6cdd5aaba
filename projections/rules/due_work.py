"""What each event does to its run's work row (the `due_work` table): added when queued,
leased, rescheduled, parked while a person or an event is awaited, removed when finished.

Leases are set from ``run.started`` (so a rebuild restores them); a lease holder's heartbeats
extend them outside events (services/worker/leases.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from domain.envelope import Envelope
from domain.events import (
    ApprovalRequested,
    RunAttemptFailed,
    RunDeferred,
    RunQueued,
    RunStarted,
    RunWaiting,
    run_stream,
)
from domain.ownership import scoped_key
from projections.rules.row import Model, Row, updated

TABLE = "due_work"
KEY = "run_id"
COLUMNS = (
    "run_id",
    "task_id",
    "scheduled_for",
    "run_at",
    "priority",
    "concurrency_key",
    "attempt",
    "locked_by",
    "locked_until",
    "created_at",
    "max_concurrency",
    "dedupe_key",
    "dedupe_window_seconds",
    "parked",
    "lapses",
)
STRUCTURED: frozenset[str] = frozenset()
# (the work row or None, the event, the run's row as the runs rules left it) -> the work row.
WorkRule: TypeAlias = Callable[[Row | None, Envelope, Row | None], Row | None]


def key_of(envelope: Envelope) -> str:
    """The run whose work an event changes."""
    return str(envelope.event.run_id)  # type: ignore[union-attr]


def _queued(row: Row | None, envelope: Envelope, run: Row | None) -> Row | None:
    """New work, or work queued again: due at its run_at, unleased, not parked."""
    assert isinstance(envelope.event, RunQueued)
    e = envelope.event
    if row is not None:
        return updated(
            row,
            run_at=e.run_at,
            attempt=e.attempt,
            locked_by=None,
            locked_until=None,
            parked=False,
            lapses=0,
        )
    return {
        "run_id": e.run_id,
        "task_id": e.task_id,
        "scheduled_for": e.scheduled_for,
        "run_at": e.run_at,
        "priority": e.priority,
        "concurrency_key": scoped_key(e.owner, e.concurrency_key),
        "attempt": e.attempt,
        "locked_by": None,
        "locked_until": None,
        "created_at": envelope.recorded_at,
        "max_concurrency": e.max_concurrency,
        "dedupe_key": scoped_key(e.owner, e.dedupe_key),
        "dedupe_window_seconds": e.dedupe_window_seconds,
        "parked": False,
        "lapses": 0,
    }


# A resumed start (the previous lease lapsed) counts one more lapse of this attempt.
def _started(row: Row | None, envelope: Envelope, run: Row | None) -> Row | None:
    assert isinstance(envelope.event, RunStarted)
    e = envelope.event
    if row is None:
        return None
    return updated(
        row,
        locked_by=e.worker,
        locked_until=e.lease_until,
        attempt=e.attempt,
        lapses=row["lapses"] + 1 if e.resumed else row["lapses"],
    )


def _attempt_failed(row: Row | None, envelope: Envelope, run: Row | None) -> Row | None:
    assert isinstance(envelope.event, RunAttemptFailed)
    e = envelope.event
    return updated(
        row,
        run_at=e.retry_at,
        attempt=e.attempt + 1,
        locked_by=None,
        locked_until=None,
        lapses=0,
    )


# Deferred (quiet hours): an ordinary row again, due when the window ends.
def _deferred(row: Row | None, envelope: Envelope, run: Row | None) -> Row | None:
    assert isinstance(envelope.event, RunDeferred)
    until = envelope.event.until
    return updated(row, run_at=until, locked_by=None, locked_until=None, lapses=0)


def _parked(row: Row | None, envelope: Envelope, run: Row | None) -> Row | None:
    """Awaiting a person or an event: no row without a deadline, due at it otherwise."""
    event = envelope.event
    assert isinstance(event, ApprovalRequested | RunWaiting)
    deadline = event.expires_at if isinstance(event, ApprovalRequested) else event.until
    if deadline is None:
        return None
    return updated(row, parked=True, run_at=deadline, locked_by=None, locked_until=None)


def _unparked(row: Row | None, envelope: Envelope, run: Row | None) -> Row | None:
    """Decided, resumed or timed out: due again now (re-created from the run if it was
    parked without a deadline)."""
    at = envelope.recorded_at
    if row is not None:
        return updated(row, run_at=at, parked=False, locked_by=None, locked_until=None)
    if run is None:
        return None
    return {
        "run_id": run["run_id"],
        "task_id": run["task_id"],
        "scheduled_for": run["scheduled_for"],
        "run_at": at,
        "priority": run["priority"],
        "concurrency_key": run["concurrency_key"],
        "attempt": run["attempt"],
        "locked_by": None,
        "locked_until": None,
        "created_at": at,
        "max_concurrency": _max_concurrency(run),
        "dedupe_key": None,
        "dedupe_window_seconds": None,
        "parked": False,
        "lapses": 0,
    }


def _max_concurrency(run: Row) -> int:
    value = run["queued"].get("max_concurrency")
    return 1 if value is None else int(value)


# The events whose rule reads the run's row (to re-create work parked without a deadline).
READS_RUN = frozenset(
    {"approval.granted", "approval.rejected", "run.resumed", "run.wait_timed_out"}
)


def _finished(row: Row | None, envelope: Envelope, run: Row | None) -> Row | None:
    return None


FINISHING = frozenset({"run.succeeded", "run.dead", "run.canceled", "run.deduplicated"})
RULES: dict[str, WorkRule] = {
    "run.queued": _queued,
    "run.started": _started,
    "run.attempt_failed": _attempt_failed,
    "run.deferred": _deferred,
    "approval.requested": _parked,
    "approval.granted": _unparked,
    "approval.rejected": _unparked,
    "run.waiting": _parked,
    "run.resumed": _unparked,
    "run.wait_timed_out": _unparked,
    "run.succeeded": _finished,
    "run.dead": _finished,
    "run.canceled": _finished,
    "run.deduplicated": _finished,
}

MODEL = Model(TABLE, KEY, COLUMNS, STRUCTURED, RULES, key_of, run_stream, removes=FINISHING)
