"""The `runs` read model: each run's status, attempts and every step's input and output.

What each event does to the row is projections/rules/runs.py; this applies it inline.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.envelope import Envelope
from projections.base import Connection
from projections.rows import RowStatements, apply_rules
from projections.rules import runs as rules


class RunsProjection:
    """Maintains the `runs` table."""

    name: str = "runs"
    tables: tuple[str, ...] = (rules.TABLE,)
    handles: frozenset[str] = rules.MODEL.handles

    def __init__(self) -> None:
        self._rows = RowStatements(rules.MODEL)

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Change one run's row for one event."""
        await self.apply_batch(conn, [envelope])

    async def apply_batch(self, conn: Connection, envelopes: Sequence[Envelope]) -> None:
        """Change the rows of a batch's runs."""
        await apply_rules(conn, self._rows, envelopes)
