"""The `task` read model: each task's current definition, status and next run.

What each event does to the row is projections/rules/task.py; this applies it inline.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.envelope import Envelope
from projections.base import Connection
from projections.rows import RowStatements, apply_rules
from projections.rules import task as rules

TIMER_CHANNEL = "ordinaut_timer"
_NOTIFY = "SELECT pg_notify($1, $2)"


class TaskProjection:
    """Maintains the `task` table."""

    name: str = "task"
    tables: tuple[str, ...] = (rules.TABLE,)
    handles: frozenset[str] = rules.MODEL.handles

    def __init__(self) -> None:
        self._rows = RowStatements(rules.MODEL)

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Change the task row for one event."""
        await self.apply_batch(conn, [envelope])

    async def apply_batch(self, conn: Connection, envelopes: Sequence[Envelope]) -> None:
        """Change the rows of a batch's tasks, then wake a sleeping timer at commit if a
        command gave a task a run that may be earlier than the one it waits for."""
        await apply_rules(conn, self._rows, envelopes)
        wakes = [
            (TIMER_CHANNEL, str(at.timestamp())) for e in envelopes if (at := rules.wakes_timer(e))
        ]
        if len(wakes) == 1:
            await conn.execute(_NOTIFY, *wakes[0])
        elif wakes:
            await conn.executemany(_NOTIFY, wakes)
