"""Named secrets (admin): store or replace, list without values, delete.

A value goes in once and never comes back out of the API: reads show names, which tools may
receive each secret, and times. Pipelines use a secret as ``${secrets.NAME}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from domain.envelope import EventMeta
from domain.events import Event, SecretDeleted, SecretStored, secret_stream
from domain.secrets import NAME, VALUE_MAX, check_allowed_tools, check_name, check_value
from projections.base import Connection
from services.api.auth import ADMIN_SCOPE, principal_of, requires
from services.api.contract import problem_spec
from services.api.problems import ApiError
from services.api.tool_store import stream_version
from services.store.events import StreamAppend, append_in_transaction


class SecretBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A secret to store: its value and the tools (addresses or globs) that may receive it."""

    # Checked by domain.secrets (with its own message); stated here for the document.
    name: Annotated[str, msgspec.Meta(extra_json_schema={"pattern": NAME.pattern})]
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=VALUE_MAX)]
    allowed_tools: list[str]
    description: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class SecretView(msgspec.Struct, frozen=True, kw_only=True):
    """A stored secret, without its value."""

    name: str
    allowed_tools: list[str]
    description: str | None
    created_at: datetime
    updated_at: datetime


class SecretList(msgspec.Struct, frozen=True):
    """Every stored secret, by name."""

    items: list[SecretView]


_COLUMNS = "name, allowed_tools, description, created_at, updated_at"


def _view(row: Any) -> SecretView:
    return SecretView(
        name=row["name"],
        allowed_tools=list(row["allowed_tools"]),
        description=row["description"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _append(
    conn: Connection, request: Request[Any, Any, Any], name: str, event: Event, at: int
) -> None:
    meta = EventMeta(
        actor=principal_of(request).actor, correlation_id=request.scope["state"]["correlation_id"]
    )
    append = StreamAppend(secret_stream(name), [event], expected_version=at)
    await append_in_transaction(conn, [append], meta, request.app.state.projections)


@post(
    "/secrets",
    guards=[requires(ADMIN_SCOPE)],
    tags=["secrets"],
    summary="Store a secret",
    responses={
        200: ResponseSpec(SecretView, description="A secret of this name was replaced"),
        503: problem_spec("This API has no secret key configured"),
    },
)
async def store_secret(
    request: Request[Any, Any, Any], state: State, data: JSONBody[SecretBody]
) -> Response[SecretView]:
    """Record ``secret.stored`` (only the ciphertext): 201 for a new name, 200 to replace."""
    box = state.secret_box
    if box is None:
        raise ApiError(503, "Secrets unavailable", "this API has no secret key configured")
    name = check_name(data.name)
    event = SecretStored(
        name=name,
        ciphertext=box.seal(name, check_value(data.value)),
        allowed_tools=check_allowed_tools(data.allowed_tools),
        description=data.description,
    )
    async with state.pool.acquire() as conn, conn.transaction():
        version = await conn.fetchval("SELECT version FROM secret WHERE name = $1 FOR UPDATE", name)
        at = version if version is not None else await stream_version(conn, secret_stream(name))
        await _append(conn, request, name, event, at)
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM secret WHERE name = $1", name)  # noqa: S608 - fixed columns
    return Response(_view(row), status_code=201 if version is None else 200)


@get("/secrets", guards=[requires(ADMIN_SCOPE)], tags=["secrets"], summary="List secrets")
async def list_secrets(state: State) -> SecretList:
    """Every secret's name, allowed tools and times; never a value."""
    async with state.pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT {_COLUMNS} FROM secret ORDER BY name")  # noqa: S608 - fixed columns
    return SecretList([_view(row) for row in rows])


@delete("/secrets/{name:str}", guards=[requires(ADMIN_SCOPE)], tags=["secrets"],
        status_code=204, summary="Delete a secret")  # fmt: skip
async def delete_secret(request: Request[Any, Any, Any], state: State, name: FromPath[str]) -> None:
    """Record ``secret.deleted``; steps that use the secret fail from now on."""
    async with state.pool.acquire() as conn, conn.transaction():
        version = await conn.fetchval("SELECT version FROM secret WHERE name = $1 FOR UPDATE", name)
        if version is None:
            raise ApiError(404, "Not found", f"no secret named {name!r}")
        await _append(conn, request, name, SecretDeleted(name=name), version)


ROUTES = [store_secret, list_secrets, delete_secret]
