"""The `agent_limits` read model: each agent's budget, quiet hours and rate-limit overrides."""

from __future__ import annotations

import msgspec

from domain.envelope import Envelope
from domain.events import AgentLimitsSet
from projections.base import Connection

_SET = """
INSERT INTO agent_limits (agent_id, budget_per_day, quiet_hours, timezone, rate_limits,
                          updated_at)
VALUES ($1, $2, $3::jsonb, $4, $5::jsonb, $6)
ON CONFLICT (agent_id) DO UPDATE SET budget_per_day = EXCLUDED.budget_per_day,
    quiet_hours = EXCLUDED.quiet_hours, timezone = EXCLUDED.timezone,
    rate_limits = EXCLUDED.rate_limits, updated_at = EXCLUDED.updated_at
"""
_encode = msgspec.json.Encoder()


class AgentLimitsProjection:
    """Maintains the `agent_limits` table."""

    name: str = "agent_limits"
    tables: tuple[str, ...] = ("agent_limits",)
    handles: frozenset[str] = frozenset({"agent.limits_set"})

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Replace the agent's limits."""
        event = envelope.event
        if isinstance(event, AgentLimitsSet):
            await conn.execute(
                _SET,
                event.agent_id,
                event.budget_per_day,
                _encode.encode(event.quiet_hours).decode(),
                event.timezone,
                _encode.encode(event.rate_limits).decode(),
                envelope.recorded_at,
            )
