"""Agents and their bearer tokens (admin only): create, change, list, read, issue and revoke."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import asyncpg
import msgspec

from domain import agents
from domain.agents import TokenState
from domain.events import Event, agent_stream
from domain.webhook_signing import webhook_secret
from projections.base import Connection
from services.application.context import Answer, Backend, Caller, OperationResult
from services.application.errors import Conflict, FieldError, NotFound
from services.runtime.admin_token import token_hash
from services.store.events import StreamAppend, append_in_transaction

_NAME_TAKEN = "agent_name_key"  # the unique index on agent names (migrations/0004_agents.sql)


class CreateAgent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new agent: a unique name, the scopes its tokens grant, and where to send its webhooks."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=agents.NAME_MAX)]
    # At least one: checked by domain.agents (with its own message), stated for the document.
    scopes: Annotated[list[str], msgspec.Meta(max_length=50, extra_json_schema={"minItems": 1})]
    webhook_url: Annotated[str, msgspec.Meta(max_length=agents.WEBHOOK_URL_MAX)] | None = None
    # Event types the webhook receives (default: run.succeeded, run.dead, approval.requested).
    notify_events: Annotated[list[str], msgspec.Meta(max_length=100)] | None = None


class ChangeAgent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What to change on an agent; fields left out stay as they are."""

    scopes: Annotated[list[str], msgspec.Meta(max_length=50)] | None = None


class IssueToken(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new token; the label only helps people tell tokens apart."""

    label: Annotated[str, msgspec.Meta(min_length=1, max_length=agents.LABEL_MAX)] | None = None


class TokenView(msgspec.Struct, frozen=True):
    """A token as listed: never the token, never its hash."""

    id: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


class AgentView(msgspec.Struct, frozen=True):
    """An agent with all its tokens, live and revoked, oldest first."""

    id: str
    name: str
    scopes: list[str]
    webhook_url: str | None
    created_at: datetime
    tokens: list[TokenView]
    notify_events: list[str] | None = None
    # HMAC key for the Ordinaut-Signature header of this agent's webhooks (admin eyes only).
    webhook_secret: str | None = None


class AgentList(msgspec.Struct, frozen=True):
    """Every agent, oldest first."""

    items: list[AgentView]


class IssuedToken(msgspec.Struct, frozen=True):
    """A new token: ``token`` is shown here once and cannot be read back later."""

    id: str
    token: str
    label: str | None
    created_at: datetime


_SELECT_AGENTS = "SELECT id, name, scopes, webhook_url, created_at, notify_events FROM agent"
_SELECT_TOKENS = """
SELECT id, agent_id, label, created_at, revoked_at FROM agent_token
WHERE agent_id = ANY($1::text[]) ORDER BY created_at, id
"""


def _secret(webhook_key: bytes | None, row: asyncpg.Record) -> str | None:
    if webhook_key is None or row["webhook_url"] is None:
        return None
    return webhook_secret(webhook_key, row["id"])


async def _views(
    conn: Connection, rows: list[asyncpg.Record], webhook_key: bytes | None
) -> list[AgentView]:
    tokens: dict[str, list[TokenView]] = {row["id"]: [] for row in rows}
    for token in await conn.fetch(_SELECT_TOKENS, list(tokens)):
        tokens[token["agent_id"]].append(
            TokenView(token["id"], token["label"], token["created_at"], token["revoked_at"])
        )
    return [
        AgentView(
            row["id"],
            row["name"],
            list(row["scopes"]),
            row["webhook_url"],
            row["created_at"],
            tokens[row["id"]],
            None if row["notify_events"] is None else list(row["notify_events"]),
            _secret(webhook_key, row),
        )
        for row in rows
    ]


async def _agent(conn: Connection, agent_id: str, webhook_key: bytes | None) -> AgentView:
    rows = await conn.fetch(f"{_SELECT_AGENTS} WHERE id = $1", agent_id)
    if not rows:
        raise no_agent(agent_id)
    return (await _views(conn, rows, webhook_key))[0]


def _canonical_id(raw: str) -> str:
    """Ids are UUIDs; anything else names no agent or token (404, never a 500)."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound(f"no agent or token has the id {raw!r}") from None


def no_agent(agent_id: str) -> NotFound:
    """The refusal for an agent id that names no agent."""
    return NotFound(f"no agent has the id {agent_id!r}")


def _name_taken(name: str) -> Conflict:
    reason = f"an agent named {name!r} already exists (names are unique regardless of case)"
    return Conflict(f"name: {reason}", [FieldError("name", reason)])


async def locked_agent_version(conn: Connection, agent_id: str) -> int:
    """The agent's stream version, locking its row so commands on one agent run one at a time."""
    version: int | None = await conn.fetchval(
        "SELECT version FROM agent WHERE id = $1 FOR UPDATE", agent_id
    )
    if version is None:
        raise no_agent(agent_id)
    return version


async def _append(
    conn: Connection,
    caller: Caller,
    backend: Backend,
    agent_id: str,
    events: Sequence[Event],
    at: int,
) -> None:
    stream = StreamAppend(agent_stream(agent_id), events, expected_version=at)
    await append_in_transaction(conn, [stream], caller.meta(), backend.projections)


async def create_agent(
    caller: Caller, backend: Backend, data: CreateAgent, webhook_key: bytes | None
) -> AgentView:
    """Record ``agent.created``; a name already taken (ignoring case) is a conflict.

    ``webhook_key`` derives the agent's webhook signing secret (None: no secret is shown)."""
    agent_id = str(uuid.uuid4())
    event = agents.create_agent(
        agent_id, data.name, data.scopes, data.webhook_url, data.notify_events
    )
    async with backend.pool.acquire() as conn, conn.transaction():
        key = agents.name_key(event.name)
        if await conn.fetchval("SELECT true FROM agent WHERE name_key = $1", key):
            raise _name_taken(event.name)
        try:
            await _append(conn, caller, backend, agent_id, [event], 0)
        except asyncpg.UniqueViolationError as exc:  # a concurrent create took the name first
            if exc.constraint_name != _NAME_TAKEN:
                raise
            raise _name_taken(event.name) from None
        return await _agent(conn, agent_id, webhook_key)


async def change_agent(
    caller: Caller,
    backend: Backend,
    agent_id: str,
    data: ChangeAgent,
    webhook_key: bytes | None,
) -> AgentView:
    """Record ``agent.updated``. New scopes hold from the agent's next request, and from the
    next step its runs take: a revoked tool scope stops pipelines that use that tool."""
    agent_id = _canonical_id(agent_id)
    async with backend.pool.acquire() as conn, conn.transaction():
        version = await locked_agent_version(conn, agent_id)
        if data.scopes is not None:
            current = await conn.fetchval("SELECT scopes FROM agent WHERE id = $1", agent_id)
            events = agents.change_scopes(agent_id, current, data.scopes)
            if events:
                await _append(conn, caller, backend, agent_id, events, version)
        return await _agent(conn, agent_id, webhook_key)


async def list_agents(backend: Backend, webhook_key: bytes | None) -> AgentList:
    """Every agent with its tokens, ordered by creation."""
    async with backend.pool.acquire() as conn:
        rows = await conn.fetch(f"{_SELECT_AGENTS} ORDER BY created_at, id")
        return AgentList(await _views(conn, rows, webhook_key))


async def read_agent(backend: Backend, agent_id: str, webhook_key: bytes | None) -> AgentView:
    """One agent with its tokens (ids, labels and dates; never a token or its hash)."""
    async with backend.pool.acquire() as conn:
        return await _agent(conn, _canonical_id(agent_id), webhook_key)


async def issue_token(
    caller: Caller, backend: Backend, agent_id: str, label: str | None
) -> IssuedToken:
    """Record ``agent.token_issued`` with the token's SHA-256; the token is returned only here."""
    agent_id, token_id = _canonical_id(agent_id), str(uuid.uuid4())
    token = secrets.token_urlsafe(32)
    event = agents.issue_token(agent_id, token_id, token_hash(token).hex(), label)
    async with backend.pool.acquire() as conn, conn.transaction():
        version = await locked_agent_version(conn, agent_id)
        await _append(conn, caller, backend, agent_id, [event], version)
        created_at = await conn.fetchval(
            "SELECT created_at FROM agent_token WHERE id = $1", token_id
        )
    return IssuedToken(token_id, token, event.label, created_at)


async def revoke_token(
    caller: Caller, backend: Backend, agent_id: str, token_id: str
) -> OperationResult:
    """Record ``agent.token_revoked``: the next request with the token is refused.

    An unknown token is not found; revoking a revoked token again records nothing.
    """
    agent_id, token_id = _canonical_id(agent_id), _canonical_id(token_id)
    async with backend.pool.acquire() as conn, conn.transaction():
        version = await locked_agent_version(conn, agent_id)
        row = await conn.fetchrow(
            "SELECT revoked_at FROM agent_token WHERE id = $1 AND agent_id = $2",
            token_id,
            agent_id,
        )
        if row is None:
            raise NotFound(f"agent {agent_id!r} has no token {token_id!r}")
        events = agents.revoke_token(TokenState(agent_id, token_id, row["revoked_at"]))
        if events:
            await _append(conn, caller, backend, agent_id, events, version)
    return OperationResult(Answer.DELETED, None)
