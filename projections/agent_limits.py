"""The `agent_limits` read model: each agent's budget, quiet hours and rate-limit overrides.

What each event does to the row is projections/rules/agent_limits.py; this applies it inline.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.envelope import Envelope
from projections.base import Connection
from projections.rows import RowStatements, apply_rules
from projections.rules import agent_limits as rules


class AgentLimitsProjection:
    """Maintains the `agent_limits` table."""

    name: str = "agent_limits"
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
