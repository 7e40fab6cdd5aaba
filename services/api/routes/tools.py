"""The tool catalog: register, replace and remove tools (admin); list and read them."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from domain.envelope import EventMeta
from domain.events import Event, ToolRegistered, ToolRemoved, tool_stream
from domain.tools import BUILTIN_TOOLS, validate_registration
from projections.base import Connection
from services.api.auth import ADMIN_SCOPE, principal_of, requires
from services.api.problems import ApiError
from services.api.tool_store import (
    ToolList,
    ToolView,
    list_tools,
    load_tool,
    stream_version,
    tool_view,
)
from services.store.events import StreamAppend, append_in_transaction


def _object_schema() -> dict[str, Any]:
    return {"type": "object"}


class ToolBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A tool to register: where it runs, the JSON Schemas of its input and output, its limits."""

    address: str
    transport: Literal["http", "mcp"]
    description: str | None = None
    endpoint: str | None = None
    command: list[str] | None = None
    input_schema: dict[str, Any] = msgspec.field(default_factory=_object_schema)
    output_schema: dict[str, Any] = msgspec.field(default_factory=dict)
    timeout_seconds: float = 30.0
    scopes: list[str] = msgspec.field(default_factory=list)


def _registration(body: ToolBody) -> ToolRegistered:
    """The validated event for ``body`` (a broken rule raises ToolRuleError: a 422)."""
    return validate_registration(
        ToolRegistered(
            address=body.address,
            transport=body.transport,
            description=body.description,
            endpoint=body.endpoint,
            command=None if body.command is None else tuple(body.command),
            input_schema=body.input_schema,
            output_schema=body.output_schema,
            timeout_seconds=body.timeout_seconds,
            scopes=tuple(body.scopes),
        )
    )


def _no_tool(address: str) -> ApiError:
    return ApiError(404, "Not found", f"no tool has the address {address!r}")


async def _append(
    conn: Connection, request: Request[Any, Any, Any], event: Event, address: str, at: int
) -> None:
    meta = EventMeta(
        actor=principal_of(request).actor, correlation_id=request.scope["state"]["correlation_id"]
    )
    append = StreamAppend(tool_stream(address), [event], expected_version=at)
    await append_in_transaction(conn, [append], meta, request.app.state.projections)


@post("/tools", guards=[requires(ADMIN_SCOPE)], tags=["tools"], summary="Register a tool")
async def register_tool(
    request: Request[Any, Any, Any], state: State, data: JSONBody[ToolBody]
) -> Response[ToolView]:
    """Record ``tool.registered``: 201 for a new address, 200 when it replaces a registration.

    Registering exactly what is already registered records nothing and answers 200.
    """
    tool = _registration(data)
    async with state.pool.acquire() as conn, conn.transaction():
        current = await load_tool(conn, tool.address, lock=True)
        if current is not None and current.registration == tool:
            return Response(tool_view(tool), status_code=200)
        # A removed tool's stream goes on from where it stopped; a concurrent first
        # registration of the same address makes this append a version conflict (409).
        at = current.version if current else await stream_version(conn, tool_stream(tool.address))
        await _append(conn, request, tool, tool.address, at)
    return Response(tool_view(tool), status_code=201 if current is None else 200)


@get("/tools", guards=[requires("tasks:read")], tags=["tools"], summary="List tools")
async def get_tools(state: State) -> ToolList:
    """Every tool, builtin and registered, sorted by address."""
    async with state.pool.acquire() as conn:
        return ToolList(await list_tools(conn))


@get("/tools/{address:str}", guards=[requires("tasks:read")], tags=["tools"],
     summary="Read a tool")  # fmt: skip
async def get_tool(state: State, address: FromPath[str]) -> ToolView:
    """One tool by address; 404 if it is neither builtin nor registered."""
    if address in BUILTIN_TOOLS:
        return tool_view(BUILTIN_TOOLS[address])
    async with state.pool.acquire() as conn:
        current = await load_tool(conn, address)
    if current is None:
        raise _no_tool(address)
    return tool_view(current.registration)


@delete("/tools/{address:str}", guards=[requires(ADMIN_SCOPE)], tags=["tools"],
        status_code=204, summary="Remove a tool")  # fmt: skip
async def remove_tool(
    request: Request[Any, Any, Any], state: State, address: FromPath[str]
) -> None:
    """Record ``tool.removed``; tasks using the tool are refused from now on. Builtins: 409."""
    if address in BUILTIN_TOOLS:
        raise ApiError(409, "Conflict", f"{address!r} is a builtin tool and cannot be removed")
    async with state.pool.acquire() as conn, conn.transaction():
        current = await load_tool(conn, address, lock=True)
        if current is None:
            raise _no_tool(address)
        await _append(conn, request, ToolRemoved(address=address), address, current.version)


ROUTES: list[Any] = [register_tool, get_tools, get_tool, remove_tool]
