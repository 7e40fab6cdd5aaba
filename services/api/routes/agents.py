"""Agents and their bearer tokens (admin only): thin HTTP adapters over
services/application/agents."""

from __future__ import annotations

from typing import Any

from litestar import delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from services.api.auth import requires
from services.api.state import AppState
from services.application import agents as ops
from services.application.agents import (
    AgentList,
    AgentView,
    ChangeAgent,
    CreateAgent,
    IssuedToken,
    IssueToken,
)
from services.application.context import Backend, Caller
from services.application.principal import ADMIN_SCOPE


@post(
    "/agents",
    guards=[requires(ADMIN_SCOPE)],
    status_code=201,
    tags=["agents"],
    summary="Create an agent",
)
async def create_agent(
    caller: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    state: AppState,
    data: JSONBody[CreateAgent],
) -> AgentView:
    """Record ``agent.created``; a name already taken (ignoring case) is a 409."""
    return await ops.create_agent(caller, backend, data, state.webhook_key)


@patch(
    "/agents/{agent_id:str}",
    guards=[requires(ADMIN_SCOPE)],
    tags=["agents"],
    summary="Change an agent",
)
async def change_agent(
    caller: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    state: AppState,
    agent_id: FromPath[str],
    data: JSONBody[ChangeAgent],
) -> AgentView:
    """Record ``agent.updated``. New scopes hold from the agent's next request, and from the
    next step its runs take: a revoked tool scope stops pipelines that use that tool."""
    return await ops.change_agent(caller, backend, agent_id, data, state.webhook_key)


@get("/agents", guards=[requires(ADMIN_SCOPE)], tags=["agents"], summary="List agents")
async def list_agents(backend: NamedDependency[Backend], state: AppState) -> AgentList:
    """Every agent with its tokens, ordered by creation."""
    return await ops.list_agents(backend, state.webhook_key)


@get(
    "/agents/{agent_id:str}",
    guards=[requires(ADMIN_SCOPE)],
    tags=["agents"],
    summary="Read an agent",
)
async def get_agent(
    backend: NamedDependency[Backend], state: AppState, agent_id: FromPath[str]
) -> AgentView:
    """One agent with its tokens (ids, labels and dates; never a token or its hash)."""
    return await ops.read_agent(backend, agent_id, state.webhook_key)


@post(
    "/agents/{agent_id:str}/tokens",
    guards=[requires(ADMIN_SCOPE)],
    status_code=201,
    tags=["agents"],
    summary="Issue a token",
)
async def issue_token(
    caller: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    agent_id: FromPath[str],
    data: JSONBody[IssueToken | None] = None,
) -> IssuedToken:
    """Record ``agent.token_issued`` with the token's SHA-256; the token is returned only here.

    The body is optional: none, ``null`` and ``{}`` all issue an unlabelled token.
    """
    label = data.label if data is not None else None
    return await ops.issue_token(caller, backend, agent_id, label)


@delete(
    "/agents/{agent_id:str}/tokens/{token_id:str}",
    guards=[requires(ADMIN_SCOPE)],
    status_code=204,
    tags=["agents"],
    summary="Revoke a token",
)
async def revoke_token(
    caller: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    agent_id: FromPath[str],
    token_id: FromPath[str],
) -> None:
    """Record ``agent.token_revoked``: the next request with the token is a 401.

    An unknown token is a 404; revoking a revoked token again is a 204 that records nothing.
    """
    await ops.revoke_token(caller, backend, agent_id, token_id)


ROUTES: list[Any] = [create_agent, list_agents, get_agent, change_agent, issue_token, revoke_token]
