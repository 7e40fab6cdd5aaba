"""The `agent` and `agent_token` read models: identities, their scopes and token hashes."""

from __future__ import annotations

from domain.agents import name_key
from domain.envelope import Envelope
from domain.events import (
    AgentCreated,
    AgentLimitsSet,
    AgentTokenIssued,
    AgentTokenRevoked,
    AgentUpdated,
)
from projections.base import Connection

_INSERT_AGENT = """
INSERT INTO agent (id, name, name_key, scopes, webhook_url, created_by, created_at, updated_at,
                   version, notify_events)
VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $7, $8, $9::text[])
"""

_INSERT_ISSUED = """
INSERT INTO agent_token (id, agent_id, token_sha256, label, created_at)
VALUES ($1, $2, $3, $4, $5)
"""

# Only a live token is revoked, so a repeated revocation event keeps the first instant.
_MARK_REVOKED = """
UPDATE agent_token SET revoked_at = $3
WHERE id = $1 AND agent_id = $2 AND revoked_at IS NULL
"""

_TOUCH_AGENT = "UPDATE agent SET updated_at = $2, version = $3 WHERE id = $1"
_UPDATE_SCOPES = """
UPDATE agent SET scopes = coalesce($2::text[], scopes), updated_at = $3, version = $4
WHERE id = $1
"""


class AgentProjection:
    """Maintains the `agent` and `agent_token` tables."""

    name: str = "agent"
    tables: tuple[str, ...] = ("agent", "agent_token")
    # Every event of an agent's stream, so `agent.version` is the stream's version: the admin
    # routes lock this row and append at exactly that version (agent.limits_set included;
    # its own table is kept by projections/agent_limits.py).
    handles: frozenset[str] = frozenset(
        {
            "agent.created",
            "agent.updated",
            "agent.token_issued",
            "agent.token_revoked",
            "agent.limits_set",
        }
    )

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Change the agent's rows for one event."""
        at, version = envelope.recorded_at, envelope.version
        match envelope.event:
            case AgentCreated(
                agent_id=agent_id, name=name, scopes=scopes, webhook_url=url, notify_events=chosen
            ):
                await conn.execute(
                    _INSERT_AGENT,
                    agent_id,
                    name,
                    name_key(name),
                    list(scopes),
                    url,
                    envelope.meta.actor,
                    at,
                    version,
                    None if chosen is None else list(chosen),
                )
            case AgentUpdated(agent_id=agent_id, scopes=scopes):
                await conn.execute(_UPDATE_SCOPES, agent_id, scopes and list(scopes), at, version)
            case AgentTokenIssued(
                agent_id=agent_id, token_id=token_id, token_sha256=digest, label=label
            ):
                await conn.execute(_INSERT_ISSUED, token_id, agent_id, digest, label, at)
                await conn.execute(_TOUCH_AGENT, agent_id, at, version)
            case AgentTokenRevoked(agent_id=agent_id, token_id=token_id):
                await conn.execute(_MARK_REVOKED, token_id, agent_id, at)
                await conn.execute(_TOUCH_AGENT, agent_id, at, version)
            case AgentLimitsSet(agent_id=agent_id):
                await conn.execute(_TOUCH_AGENT, agent_id, at, version)
