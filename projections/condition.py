"""The `condition_state` read model: what each condition task's next evaluation starts from.

What each event does to the row is projections/rules/condition.py; this applies it inline.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.envelope import Envelope
from projections.base import Connection
from projections.rows import RowStatements, apply_rules
from projections.rules import condition as rules


class ConditionProjection:
    """Maintains the `condition_state` table."""

    name: str = "condition"
    tables: tuple[str, ...] = (rules.TABLE,)
    handles: frozenset[str] = rules.MODEL.handles

    def __init__(self) -> None:
        self._rows = RowStatements(rules.MODEL)

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Change the row for one event."""
        await self.apply_batch(conn, [envelope])

    async def apply_batch(self, conn: Connection, envelopes: Sequence[Envelope]) -> None:
        """Change the rows a batch's events touch."""
        await apply_rules(conn, self._rows, envelopes)
