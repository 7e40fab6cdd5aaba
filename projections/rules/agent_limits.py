"""What each event does to an agent's limits (the `agent_limits` table): budget, quiet hours
and rate-limit overrides, replaced whole by each ``agent.limits_set``."""

from __future__ import annotations

from domain.envelope import Envelope
from domain.events import AgentLimitsSet, agent_stream
from projections.rules.row import Model, Row, Rule, json_text

TABLE = "agent_limits"
KEY = "agent_id"
COLUMNS = ("agent_id", "budget_per_day", "quiet_hours", "timezone", "rate_limits", "updated_at")


def key_of(envelope: Envelope) -> str:
    """The agent whose limits an event sets."""
    assert isinstance(envelope.event, AgentLimitsSet)
    return envelope.event.agent_id


def _set(row: Row | None, envelope: Envelope) -> Row | None:
    event = envelope.event
    assert isinstance(event, AgentLimitsSet)
    return {
        "agent_id": event.agent_id,
        "budget_per_day": event.budget_per_day,
        "quiet_hours": json_text(event.quiet_hours),
        "timezone": event.timezone,
        "rate_limits": json_text(event.rate_limits),
        "updated_at": envelope.recorded_at,
    }


RULES: dict[str, Rule] = {"agent.limits_set": _set}
MODEL = Model(
    TABLE,
    KEY,
    COLUMNS,
    frozenset(),
    RULES,
    key_of,
    agent_stream,
    json_text_columns=frozenset({"quiet_hours", "rate_limits"}),
)
