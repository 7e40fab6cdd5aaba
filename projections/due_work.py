"""The `due_work` read model: runs waiting for a worker, with their flow control.

What each event does to the row is projections/rules/due_work.py; this applies it inline,
with the rows locked: lease heartbeats (services/worker/leases.py) update them outside events.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.envelope import Envelope
from projections.base import Connection
from projections.rows import RowStatements, apply_rules
from projections.rules import due_work as rules
from projections.rules import runs


class DueWorkProjection:
    """Maintains the `due_work` table."""

    name: str = "due_work"
    tables: tuple[str, ...] = (rules.TABLE,)
    handles: frozenset[str] = rules.MODEL.handles
    # Re-created work reads its run's row as the batch's earlier events left it.
    reads_across: frozenset[str] = rules.READS_RUN

    def __init__(self) -> None:
        self._rows = RowStatements(rules.MODEL, lock=True)
        self._runs = RowStatements(runs.MODEL)

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Add, lease, reschedule, park or remove one run's work."""
        await self.apply_batch(conn, [envelope])

    async def apply_batch(self, conn: Connection, envelopes: Sequence[Envelope]) -> None:
        """Change the work rows of a batch's runs; work re-created when a parked run is
        decided reads the run's row (the runs projection, applied before this one)."""
        needing = [rules.key_of(e) for e in envelopes if e.type in rules.READS_RUN]
        found = await self._runs.read(conn, list(dict.fromkeys(needing))) if needing else {}
        await apply_rules(conn, self._rows, envelopes, found.get)
