"""The `due_work` read model: occurrences that fired and wait for a worker."""

from __future__ import annotations

from domain.envelope import Envelope
from domain.events import TaskDue, TaskRunRequested
from projections.base import Connection

_INSERT = """
INSERT INTO due_work (run_id, task_id, scheduled_for, run_at, priority, concurrency_key, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""


class DueWorkProjection:
    """Maintains the `due_work` table."""

    name: str = "due_work"
    tables: tuple[str, ...] = ("due_work",)
    handles: frozenset[str] = frozenset({"task.due", "task.run_requested"})

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Add the work a fired occurrence creates."""
        event = envelope.event
        if isinstance(event, TaskDue):
            await conn.execute(
                _INSERT, event.run_id, event.task_id, event.scheduled_for, event.run_at,
                event.priority, event.concurrency_key, envelope.recorded_at,
            )  # fmt: skip
        elif isinstance(event, TaskRunRequested):
            await conn.execute(
                _INSERT, event.run_id, event.task_id, event.run_at, event.run_at,
                event.priority, event.concurrency_key, envelope.recorded_at,
            )  # fmt: skip
