"""What each event of an agent's stream does to the agent's row (the `agent` table) and to its
tokens' rows (the `agent_token` table)."""

from __future__ import annotations

from domain.agents import name_key
from domain.envelope import Envelope
from domain.events import (
    AgentCreated,
    AgentLimitsSet,
    AgentTokenIssued,
    AgentTokenRevoked,
    AgentUpdated,
    agent_stream,
)
from projections.rules.row import Model, Row, Rule, updated

AGENT_TABLE = "agent"
AGENT_KEY = "id"
AGENT_COLUMNS = (
    "id",
    "name",
    "name_key",
    "scopes",
    "webhook_url",
    "created_by",
    "created_at",
    "updated_at",
    "version",
    "notify_events",
)
TOKEN_COLUMNS = ("id", "agent_id", "token_sha256", "label", "created_at", "revoked_at")


def agent_of(envelope: Envelope) -> str:
    """The agent an event changes."""
    event = envelope.event
    assert isinstance(
        event, AgentCreated | AgentUpdated | AgentTokenIssued | AgentTokenRevoked | AgentLimitsSet
    )
    return event.agent_id


def token_of(envelope: Envelope) -> str:
    """The token an event changes."""
    event = envelope.event
    assert isinstance(event, AgentTokenIssued | AgentTokenRevoked)
    return event.token_id


def _no_stream_of_its_own(token_id: str) -> str:
    """A token's events are in its agent's stream, never the first of it: a token's row is
    always looked for (no stream is named by the empty string)."""
    return ""


def _created(row: Row | None, envelope: Envelope) -> Row | None:
    created = envelope.event
    assert isinstance(created, AgentCreated)
    chosen = created.notify_events
    return {
        "id": created.agent_id,
        "name": created.name,
        "name_key": name_key(created.name),
        "scopes": list(created.scopes),
        "webhook_url": created.webhook_url,
        "created_by": envelope.meta.actor,
        "created_at": envelope.recorded_at,
        "updated_at": envelope.recorded_at,
        "version": envelope.version,
        "notify_events": None if chosen is None else list(chosen),
    }


def _updated(row: Row | None, envelope: Envelope) -> Row | None:
    """Scopes left None did not change."""
    update = envelope.event
    assert isinstance(update, AgentUpdated)
    if update.scopes is None:
        return _touched(row, envelope)
    return updated(
        row,
        scopes=list(update.scopes),
        updated_at=envelope.recorded_at,
        version=envelope.version,
    )


# Every event of an agent's stream moves `agent.version` to the stream's version: the admin
# routes lock this row and append at exactly that version (agent.limits_set included; its
# own table is kept by projections/rules/agent_limits.py).
def _touched(row: Row | None, envelope: Envelope) -> Row | None:
    return updated(row, updated_at=envelope.recorded_at, version=envelope.version)


AGENT_RULES: dict[str, Rule] = {
    "agent.created": _created,
    "agent.updated": _updated,
    "agent.token_issued": _touched,
    "agent.token_revoked": _touched,
    "agent.limits_set": _touched,
}
AGENT = Model(
    AGENT_TABLE, AGENT_KEY, AGENT_COLUMNS, frozenset(), AGENT_RULES, agent_of, agent_stream
)


def _issued(row: Row | None, envelope: Envelope) -> Row | None:
    issued = envelope.event
    assert isinstance(issued, AgentTokenIssued)
    return {
        "id": issued.token_id,
        "agent_id": issued.agent_id,
        "token_sha256": issued.token_sha256,
        "label": issued.label,
        "created_at": envelope.recorded_at,
        "revoked_at": None,
    }


def _revoked(row: Row | None, envelope: Envelope) -> Row | None:
    """Only a live token of the agent is revoked, so a repeated revocation keeps the first
    instant."""
    revoked = envelope.event
    assert isinstance(revoked, AgentTokenRevoked)
    if row is None or row["agent_id"] != revoked.agent_id or row["revoked_at"] is not None:
        return row
    return {**row, "revoked_at": envelope.recorded_at}


TOKEN_RULES: dict[str, Rule] = {"agent.token_issued": _issued, "agent.token_revoked": _revoked}
# The table and key are spelled out here: ruff takes a constant named TOKEN_... for a password.
TOKEN = Model(
    "agent_token",
    "id",
    TOKEN_COLUMNS,
    frozenset(),
    TOKEN_RULES,
    token_of,
    _no_stream_of_its_own,
)
