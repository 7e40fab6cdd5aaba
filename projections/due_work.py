"""The `due_work` read model: runs waiting for a worker, with their flow control.

Leases are set here from ``run.started`` (so a rebuild restores them) and extended by the
lease holder's heartbeats, which are operational state rather than facts worth an event.
"""

from __future__ import annotations

from domain.envelope import Envelope
from domain.events import (
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    RunAttemptFailed,
    RunDeferred,
    RunQueued,
    RunResumed,
    RunStarted,
    RunWaiting,
    RunWaitTimedOut,
)
from domain.ownership import scoped_key
from projections.base import Connection, Statement, run_plan

_QUEUE = """
INSERT INTO due_work (run_id, task_id, scheduled_for, run_at, priority, concurrency_key,
                      max_concurrency, dedupe_key, dedupe_window_seconds, attempt, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (run_id) DO UPDATE SET run_at = EXCLUDED.run_at, attempt = EXCLUDED.attempt,
    locked_by = NULL, locked_until = NULL, parked = false, lapses = 0
"""
# A resumed start (the previous lease lapsed) counts one more lapse of this attempt.
_LEASE = """
UPDATE due_work SET locked_by = $2, locked_until = $3, attempt = $4,
    lapses = CASE WHEN $5 THEN lapses + 1 ELSE lapses END
WHERE run_id = $1
"""
_RETRY = """
UPDATE due_work SET run_at = $2, attempt = $3, locked_by = NULL, locked_until = NULL, lapses = 0
WHERE run_id = $1
"""
# Deferred (quiet hours): an ordinary row again, due when the window ends.
_DEFER = """
UPDATE due_work SET run_at = $2, locked_by = NULL, locked_until = NULL, lapses = 0
WHERE run_id = $1
"""
_DONE = "DELETE FROM due_work WHERE run_id = $1"
# Parked until decided; a deadline keeps the row, due then to apply the timeout.
_PARK = """
UPDATE due_work SET parked = true, run_at = $2, locked_by = NULL, locked_until = NULL
WHERE run_id = $1
"""
# Decided: due again now (re-created from the run if it was parked without a deadline).
_UNPARK = """
INSERT INTO due_work (run_id, task_id, scheduled_for, run_at, priority, concurrency_key,
                      max_concurrency, dedupe_key, dedupe_window_seconds, attempt, created_at)
SELECT run_id, task_id, scheduled_for, $2, priority, concurrency_key,
       coalesce((queued->>'max_concurrency')::int, 1), NULL, NULL, attempt, $2
FROM runs WHERE run_id = $1
ON CONFLICT (run_id) DO UPDATE SET run_at = EXCLUDED.run_at, parked = false,
    locked_by = NULL, locked_until = NULL
"""
_FINISHING = frozenset({"run.succeeded", "run.dead", "run.canceled", "run.deduplicated"})


class DueWorkProjection:
    """Maintains the `due_work` table."""

    # Every statement touches only the row keyed by its first parameter (projections.base).
    keyed: bool = True
    name: str = "due_work"
    tables: tuple[str, ...] = ("due_work",)
    handles: frozenset[str] = frozenset(
        {
            "run.queued",
            "run.started",
            "run.attempt_failed",
            "run.deferred",
            "approval.requested",
            "approval.granted",
            "approval.rejected",
            "run.waiting",
            "run.resumed",
            "run.wait_timed_out",
            *_FINISHING,
        }
    )

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Add, lease, reschedule, park or remove one run's work."""
        await run_plan(conn, self.plan(envelope))

    def plan(self, envelope: Envelope) -> list[Statement]:
        """The statements for one event (batched with others' by the projection set)."""
        event = envelope.event
        match event:
            case RunQueued():
                return [
                    (
                        _QUEUE,
                        (
                            event.run_id,
                            event.task_id,
                            event.scheduled_for,
                            event.run_at,
                            event.priority,
                            scoped_key(event.owner, event.concurrency_key),
                            event.max_concurrency,
                            scoped_key(event.owner, event.dedupe_key),
                            event.dedupe_window_seconds,
                            event.attempt,
                            envelope.recorded_at,
                        ),
                    )
                ]
            case RunStarted():
                lease = (
                    event.run_id,
                    event.worker,
                    event.lease_until,
                    event.attempt,
                    event.resumed,
                )
                return [(_LEASE, lease)]
            case RunAttemptFailed():
                return [(_RETRY, (event.run_id, event.retry_at, event.attempt + 1))]
            case RunDeferred():
                return [(_DEFER, (event.run_id, event.until))]
            case ApprovalRequested(expires_at=None):
                return [(_DONE, (event.run_id,))]
            case ApprovalRequested(expires_at=deadline):
                return [(_PARK, (event.run_id, deadline))]
            case ApprovalGranted() | ApprovalRejected():
                return [(_UNPARK, (event.run_id, envelope.recorded_at))]
            # A wait parks like an approval: no row without a deadline, due at it otherwise.
            case RunWaiting(until=None):
                return [(_DONE, (event.run_id,))]
            case RunWaiting(until=deadline):
                return [(_PARK, (event.run_id, deadline))]
            case RunResumed() | RunWaitTimedOut():
                return [(_UNPARK, (event.run_id, envelope.recorded_at))]
            case _ if envelope.type in _FINISHING:
                return [(_DONE, (envelope.event.run_id,))]  # type: ignore[union-attr]
        return []
