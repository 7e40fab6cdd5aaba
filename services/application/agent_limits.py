"""An agent's limits (admin only): set them all at once, or read them with today's spend."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from domain.agent_limits import set_limits
from domain.events import QuietWindow, agent_stream
from projections.base import Connection
from services.application.agents import locked_agent_version, no_agent
from services.application.context import Backend, Caller
from services.application.task_bodies import QuietHours
from services.store.events import StreamAppend, append_in_transaction

RateText = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class LimitsBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every limit at once (a field left out is no limit): a PUT replaces the previous ones.

    ``budget_per_day`` caps what the tool calls of all the agent's tasks cost per UTC day;
    ``quiet_hours`` (in ``timezone``) hold back notifying steps of all its tasks;
    ``rate_limits`` replaces the API's limits for this agent, by route group
    (``commands``, ``reads``, ``events``), e.g. ``{"commands": "5/s burst 10"}``.
    """

    budget_per_day: Annotated[float, msgspec.Meta(ge=0, le=1e12)] | None = None
    quiet_hours: Annotated[list[QuietHours], msgspec.Meta(max_length=20)] = msgspec.field(
        default_factory=list
    )
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "UTC"
    rate_limits: dict[str, RateText] = msgspec.field(default_factory=dict)


class LimitsView(msgspec.Struct, frozen=True, kw_only=True):
    """An agent's limits as set (all empty if never set)."""

    agent_id: str
    budget_per_day: float | None
    quiet_hours: list[QuietHours]
    timezone: str
    rate_limits: dict[str, str]
    updated_at: datetime | None
    # What the tool calls of the agent's tasks cost so far today (UTC).
    spent_today: float = 0.0


_SELECT = """
SELECT budget_per_day, quiet_hours::text AS quiet_hours, timezone, rate_limits::text AS rate_limits,
       updated_at
FROM agent_limits WHERE agent_id = $1
"""
_SPENT_TODAY = """
SELECT coalesce(sum(amount), 0) FROM spend
WHERE scope = 'agent' AND subject = $1 AND day = (now() AT TIME ZONE 'UTC')::date
"""
_json = msgspec.json.Decoder()


async def _view(conn: Connection, agent_id: str) -> LimitsView:
    row = await conn.fetchrow(_SELECT, agent_id)
    spent = float(await conn.fetchval(_SPENT_TODAY, agent_id))
    if row is None:
        return LimitsView(
            agent_id=agent_id,
            budget_per_day=None,
            quiet_hours=[],
            timezone="UTC",
            rate_limits={},
            updated_at=None,
            spent_today=spent,
        )
    return LimitsView(
        spent_today=spent,
        agent_id=agent_id,
        budget_per_day=row["budget_per_day"],
        quiet_hours=msgspec.convert(_json.decode(row["quiet_hours"]), list[QuietHours]),
        timezone=row["timezone"],
        rate_limits=_json.decode(row["rate_limits"]),
        updated_at=row["updated_at"],
    )


async def put_limits(
    caller: Caller, backend: Backend, agent_id: str, data: LimitsBody
) -> LimitsView:
    """Record ``agent.limits_set``; the agent's next requests and tool calls follow it."""
    event = set_limits(
        agent_id,
        budget_per_day=data.budget_per_day,
        quiet_hours=[QuietWindow(start=w.start, end=w.end) for w in data.quiet_hours],
        timezone=data.timezone,
        rate_limits=data.rate_limits,
    )
    async with backend.pool.acquire() as conn, conn.transaction():
        version = await locked_agent_version(conn, agent_id)
        append = StreamAppend(agent_stream(agent_id), [event], expected_version=version)
        await append_in_transaction(conn, [append], caller.meta(), backend.projections)
        return await _view(conn, agent_id)


async def read_limits(backend: Backend, agent_id: str) -> LimitsView:
    """The agent's limits (empty when none were set); not found for an unknown agent."""
    async with backend.pool.acquire() as conn:
        if await conn.fetchval("SELECT true FROM agent WHERE id = $1", agent_id) is None:
            raise no_agent(agent_id)
        return await _view(conn, agent_id)
