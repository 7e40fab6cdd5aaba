"""Named secrets: store or replace, list without values, delete.

A secret is its owner's: the agent (holding ``secrets:write``) or the admin that stored its
name first. Only the admin shares one, naming the agents whose runs may use it (``agents``,
``["*"]`` for every agent; nobody unless named). An agent lists the secrets it owns or that
are shared with it, and rotates or deletes only its own.

A value goes in once and never comes back out: reads show names, which tools may receive
each secret, and times. Pipelines use a secret as ``${secrets.NAME}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from domain.events import Event, SecretDeleted, SecretStored, secret_stream
from domain.secrets import (
    EVERY_AGENT,
    NAME,
    VALUE_MAX,
    agents_on_store,
    check_allowed_tools,
    check_name,
    check_value,
    owner_on_store,
)
from projections.base import Connection
from services.application.context import Answer, Backend, Caller, OperationResult
from services.application.errors import FieldError, Invalid, NotFound, Unavailable
from services.application.inputs import NUL_ALLOWED
from services.application.principal import Principal
from services.application.tool_store import stream_version
from services.secrets.box import SecretBox
from services.store.events import StreamAppend, append_in_transaction


class SecretBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A secret to store: its value and the tools (addresses or globs) that may receive it."""

    # Checked by domain.secrets (with its own message); stated here for the document.
    name: Annotated[str, msgspec.Meta(extra_json_schema={"pattern": NAME.pattern})]
    # Sealed before it is stored, so any character may be in it (NUL too).
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=VALUE_MAX, extra=NUL_ALLOWED)]
    allowed_tools: list[str]
    description: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    # Admin only: the agents whose runs may use it (["*"]: every agent); omitted = nobody.
    agents: list[str] | None = None


class SecretView(msgspec.Struct, frozen=True, kw_only=True):
    """A stored secret, without its value."""

    name: str
    allowed_tools: list[str]
    description: str | None
    created_at: datetime
    updated_at: datetime
    owner: str
    # Who else may use it; shown to the admin only.
    agents: list[str] | None = None


class SecretList(msgspec.Struct, frozen=True):
    """The stored secrets the caller may see, by name."""

    items: list[SecretView]


_COLUMNS = "name, allowed_tools, description, created_at, updated_at, owner, agents"


def _is_admin(principal: Principal) -> bool:
    return principal.reader is None


def _view(row: Any, principal: Principal) -> SecretView:
    return SecretView(
        name=row["name"],
        allowed_tools=list(row["allowed_tools"]),
        description=row["description"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        owner=row["owner"],
        agents=list(row["agents"]) if _is_admin(principal) else None,
    )


async def _append(
    conn: Connection, caller: Caller, backend: Backend, name: str, event: Event, at: int
) -> None:
    append = StreamAppend(secret_stream(name), [event], expected_version=at)
    await append_in_transaction(conn, [append], caller.meta(), backend.projections)


_STREAM_OWNER = "SELECT owner FROM stream_owner WHERE stream = $1"
# An agent sees its own secrets and those shared with it (or with every agent).
_VISIBLE = f"SELECT {_COLUMNS} FROM secret WHERE owner = $1 OR agents && ARRAY[$1, '*']"  # noqa: S608 - fixed columns


async def store_secret(
    caller: Caller, backend: Backend, box: SecretBox | None, data: SecretBody
) -> OperationResult:
    """Record ``secret.stored`` (only the ciphertext): created for a new name, done to replace.

    The name's owner keeps it (a conflict for another agent); the admin names who may use it.
    Unavailable when this deployment has no secret key (``box``)."""
    if box is None:
        raise Unavailable("this API has no secret key configured", title="Secrets unavailable")
    principal, name = caller.principal, check_name(data.name)
    value, tools = check_value(data.value), check_allowed_tools(data.allowed_tools)
    async with backend.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT version, owner, agents FROM secret WHERE name = $1 FOR UPDATE", name
        )
        # A deleted name keeps its stream, and the stream its owner (domain/ownership.py).
        held_by = row["owner"] if row else await conn.fetchval(_STREAM_OWNER, secret_stream(name))
        owner = owner_on_store(principal.actor, _is_admin(principal), held_by)
        agents = agents_on_store(_is_admin(principal), data.agents, row["agents"] if row else ())
        if _is_admin(principal):
            await _refuse_unknown_agents(conn, data.agents or [])
        event = SecretStored(
            name=name,
            ciphertext=box.seal(name, value),
            allowed_tools=tools,
            description=data.description,
            owner=owner,
            agents=agents,
        )
        at = row["version"] if row else await stream_version(conn, secret_stream(name))
        await _append(conn, caller, backend, name, event, at)
        stored = await conn.fetchrow(f"SELECT {_COLUMNS} FROM secret WHERE name = $1", name)  # noqa: S608 - fixed columns
    answer = Answer.CREATED if row is None else Answer.DONE
    return OperationResult(answer, _view(stored, principal))


async def _refuse_unknown_agents(conn: Connection, named: list[str]) -> None:
    """Sharing with an id no agent has would share with nobody, silently (a typo, or an agent
    meant to be created first): refused naming each such entry (``"*"`` is every agent)."""
    ids = [agent for agent in named if agent != EVERY_AGENT]
    if not ids:
        return
    known = {r["id"] for r in await conn.fetch("SELECT id FROM agent WHERE id = ANY($1)", ids)}
    errors = [
        FieldError(f"agents[{index}]", f"no agent has the id {agent!r}")
        for index, agent in enumerate(named)
        if agent != EVERY_AGENT and agent not in known
    ]
    if errors:
        raise Invalid("; ".join(f"{e.field}: {e.reason}" for e in errors), errors)


async def list_secrets(caller: Caller, backend: Backend) -> SecretList:
    """The secrets the caller may use (all for the admin): names, tools, times; never a value."""
    principal = caller.principal
    async with backend.pool.acquire() as conn:
        if _is_admin(principal):
            rows = await conn.fetch(f"SELECT {_COLUMNS} FROM secret ORDER BY name")  # noqa: S608 - fixed columns
        else:
            rows = await conn.fetch(_VISIBLE + " ORDER BY name", principal.actor)
    return SecretList([_view(row, principal) for row in rows])


async def delete_secret(caller: Caller, backend: Backend, name: str) -> OperationResult:
    """Record ``secret.deleted``; steps that use the secret fail from now on. An agent
    deletes only its own (not found for any other, as for a name that does not exist)."""
    principal = caller.principal
    async with backend.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT version, owner FROM secret WHERE name = $1 FOR UPDATE", name
        )
        if row is None or not (_is_admin(principal) or row["owner"] == principal.actor):
            raise NotFound(f"no secret of yours named {name!r}")
        await _append(conn, caller, backend, name, SecretDeleted(name=name), row["version"])
    return OperationResult(Answer.DELETED, None)
