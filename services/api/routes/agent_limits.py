"""An agent's limits (admin only): thin HTTP adapters over services/application/agent_limits."""

from __future__ import annotations

from typing import Any

from litestar import get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from services.api.auth import requires
from services.application import agent_limits as ops
from services.application.agent_limits import LimitsBody, LimitsView
from services.application.context import Backend, Caller
from services.application.principal import ADMIN_SCOPE


@put(
    "/agents/{agent_id:str}/limits",
    guards=[requires(ADMIN_SCOPE)],
    tags=["agents"],
    summary="Set an agent's limits",
)
async def put_limits(
    caller: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    agent_id: FromPath[str],
    data: JSONBody[LimitsBody],
) -> LimitsView:
    """Record ``agent.limits_set``; the agent's next requests and tool calls follow it."""
    return await ops.put_limits(caller, backend, agent_id, data)


@get(
    "/agents/{agent_id:str}/limits",
    guards=[requires(ADMIN_SCOPE)],
    tags=["agents"],
    summary="Read an agent's limits",
)
async def get_limits(backend: NamedDependency[Backend], agent_id: FromPath[str]) -> LimitsView:
    """The agent's limits (empty when none were set); 404 for an unknown agent."""
    return await ops.read_limits(backend, agent_id)


ROUTES: list[Any] = [put_limits, get_limits]
