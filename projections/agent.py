"""The `agent` and `agent_token` read models: identities, their scopes and token hashes.

What each event does to the rows is projections/rules/agent.py; this applies it inline.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.envelope import Envelope
from projections.base import Connection
from projections.rows import RowStatements, apply_rules
from projections.rules import agent as rules


class AgentProjection:
    """Maintains the `agent` and `agent_token` tables."""

    name: str = "agent"
    tables: tuple[str, ...] = (rules.AGENT.table, rules.TOKEN.table)
    # Every event of an agent's stream (the agent's rules list them all, the tokens' a part).
    handles: frozenset[str] = rules.AGENT.handles | rules.TOKEN.handles

    def __init__(self) -> None:
        self._agents = RowStatements(rules.AGENT)
        self._tokens = RowStatements(rules.TOKEN)

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Change the rows for one event."""
        await self.apply_batch(conn, [envelope])

    async def apply_batch(self, conn: Connection, envelopes: Sequence[Envelope]) -> None:
        """Change the rows a batch's events touch: agents first, as a token refers to its
        agent's row."""
        await apply_rules(conn, self._agents, envelopes)
        await apply_rules(conn, self._tokens, envelopes)
