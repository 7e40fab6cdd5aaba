"""The `spend` read model: what tool calls cost, per task (its local day) and agent (UTC day).

What a step's cost adds is projections/rules/spend.py; this reads the run's row it needs (whose
task, whose agent) and adds the amounts.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.envelope import Envelope
from domain.events import RunStepSucceeded
from projections.base import Connection
from projections.rows import RowStatements
from projections.rules import runs
from projections.rules import spend as rules

# Amounts add up: two steps' costs on one day are their sum.
_ADD = """
INSERT INTO spend (scope, subject, day, amount) VALUES ($1, $2, $3, $4)
ON CONFLICT (scope, subject, day) DO UPDATE SET amount = spend.amount + EXCLUDED.amount
"""


class SpendProjection:
    """Maintains the `spend` table."""

    name: str = "spend"
    tables: tuple[str, ...] = ("spend",)
    handles: frozenset[str] = rules.HANDLES

    def __init__(self) -> None:
        self._runs = RowStatements(runs.MODEL)

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Add one step's cost to its task's and its agent's day."""
        await self.apply_batch(conn, [envelope])

    async def apply_batch(self, conn: Connection, envelopes: Sequence[Envelope]) -> None:
        """Add the batch's costs; steps that cost nothing read nothing. The run's row exists
        from run.queued, and the runs projection is applied before this one."""
        costly = [
            e for e in envelopes if isinstance(e.event, RunStepSucceeded) and e.event.cost > 0
        ]
        if not costly:
            return
        found = await self._runs.read(conn, list(dict.fromkeys(runs.key_of(e) for e in costly)))
        added = [
            (*key, amount)
            for e in costly
            for key, amount in rules.costs(found.get(runs.key_of(e)), e)
        ]
        if added:
            await conn.executemany(_ADD, added)
