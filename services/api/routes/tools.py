"""The tool catalog: register, replace and remove tools, import MCP servers (admin); read them."""

from __future__ import annotations

import re
import shutil
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody

from domain.envelope import EventMeta
from domain.events import Event, ToolRegistered, ToolRemoved, tool_stream
from domain.tools import BUILTIN_TOOLS, ToolRuleError, validate_registration
from projections.base import Connection
from services.api.auth import principal_of, requires
from services.api.state import AppState, state_of
from services.application.errors import Conflict, FieldError, Invalid, NotFound, UpstreamFailed
from services.application.principal import ADMIN_SCOPE
from services.application.tool_bodies import RateLimitBody, ToolBody, registration_of
from services.application.tool_store import (
    ToolList,
    ToolView,
    list_tools,
    load_tool,
    stream_version,
    tool_view,
)
from services.store.events import StreamAppend, append_in_transaction
from services.tools.errors import ToolCallError

SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _no_tool(address: str) -> NotFound:
    return NotFound(f"no tool has the address {address!r}")


def _meta(request: Request[Any, Any, Any]) -> EventMeta:
    return EventMeta(
        actor=principal_of(request).actor, correlation_id=request.scope["state"]["correlation_id"]
    )


async def _append(
    conn: Connection, request: Request[Any, Any, Any], event: Event, address: str, at: int
) -> None:
    append = StreamAppend(tool_stream(address), [event], expected_version=at)
    await append_in_transaction(
        conn, [append], _meta(request), state_of(request.app.state).projections
    )


@post("/tools", guards=[requires(ADMIN_SCOPE)], tags=["tools"], summary="Register a tool")
async def register_tool(
    request: Request[Any, Any, Any], state: AppState, data: JSONBody[ToolBody]
) -> Response[ToolView]:
    """Record ``tool.registered``: 201 for a new address, 200 when it replaces a registration.

    Registering exactly what is already registered records nothing and answers 200.
    """
    tool = registration_of(data, state.python_allow)
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
async def get_tools(state: AppState) -> ToolList:
    """Every tool, builtin and registered, sorted by address."""
    async with state.pool.acquire() as conn:
        return ToolList(await list_tools(conn))


@get("/tools/{address:str}", guards=[requires("tasks:read")], tags=["tools"], summary="Read a tool")
async def get_tool(state: AppState, address: FromPath[str]) -> ToolView:
    """One tool by address; 404 if it is neither builtin nor registered."""
    if address in BUILTIN_TOOLS:
        return tool_view(BUILTIN_TOOLS[address])
    async with state.pool.acquire() as conn:
        current = await load_tool(conn, address)
    if current is None:
        raise _no_tool(address)
    return tool_view(current.registration)


@delete(
    "/tools/{address:str}",
    guards=[requires(ADMIN_SCOPE)],
    tags=["tools"],
    status_code=204,
    summary="Remove a tool",
)
async def remove_tool(
    request: Request[Any, Any, Any], state: AppState, address: FromPath[str]
) -> None:
    """Record ``tool.removed``; tasks using the tool are refused from now on. Builtins: 409."""
    if address in BUILTIN_TOOLS:
        raise Conflict(f"{address!r} is a builtin tool and cannot be removed")
    async with state.pool.acquire() as conn, conn.transaction():
        current = await load_tool(conn, address, lock=True)
        if current is None:
            raise _no_tool(address)
        await _append(conn, request, ToolRemoved(address=address), address, current.version)


class McpServerBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An MCP server to import: each tool it lists is registered at ``<name>.<tool name>``.

    Give its ``endpoint`` (streamable HTTP) or the ``command`` that starts it (stdio).
    ``timeout_seconds``, ``scopes``, ``rate_limit`` and ``cost_per_call`` apply to every
    imported tool (a rate limit counts each tool's calls on their own).
    """

    name: str
    endpoint: str | None = None
    command: list[str] | None = None
    timeout_seconds: float = 30.0
    scopes: list[str] = msgspec.field(default_factory=list)
    rate_limit: RateLimitBody | None = None
    cost_per_call: float | None = None


class SkippedTool(msgspec.Struct, frozen=True):
    """A tool the server lists that could not be registered, and why."""

    name: str
    reason: str


class McpImport(msgspec.Struct, frozen=True):
    """The server's tools as registered, and those that could not be."""

    items: list[ToolView]
    skipped: list[SkippedTool]


def _server_probe(body: McpServerBody) -> ToolBody:
    """A registration of one tool of the server: it checks the target, timeout and scopes."""
    if not SERVER_NAME.match(body.name):
        raise ToolRuleError("name", "must be 1 to 64 letters, digits, _ or - (no dots)")
    return ToolBody(
        address=f"{body.name}.tool",
        transport="mcp",
        endpoint=body.endpoint,
        command=body.command,
        timeout_seconds=body.timeout_seconds,
        scopes=body.scopes,
        rate_limit=body.rate_limit,
        cost_per_call=body.cost_per_call,
    )


def _importable(
    listed: list[ToolRegistered], probe: ToolRegistered
) -> tuple[list[ToolRegistered], list[SkippedTool]]:
    """The listed tools that make valid registrations (one per address), and the others."""
    accepted: dict[str, ToolRegistered] = {}
    skipped: list[SkippedTool] = []
    for tool in listed:
        name = tool.address.split(".", 1)[1]  # the server's own name for the tool
        candidate = msgspec.structs.replace(
            tool,
            timeout_seconds=probe.timeout_seconds,
            scopes=probe.scopes,
            rate_limit=probe.rate_limit,
            cost_per_call=probe.cost_per_call,
        )
        try:
            registration = validate_registration(candidate)
        except ToolRuleError as exc:
            skipped.append(SkippedTool(name, f"{exc.field}: {exc.reason}"))
            continue
        if registration.address in accepted:
            skipped.append(SkippedTool(name, "the server lists this name more than once"))
        else:
            accepted[registration.address] = registration
    return sorted(accepted.values(), key=lambda t: t.address), skipped


@post(
    "/tools/mcp_servers",
    guards=[requires(ADMIN_SCOPE)],
    tags=["tools"],
    summary="Import an MCP server's tools",
)
async def import_mcp_server(
    request: Request[Any, Any, Any], state: AppState, data: JSONBody[McpServerBody]
) -> Response[McpImport]:
    """Register every tool the server lists (``tools/list``) as ``<name>.<tool name>``.

    One ``tool.registered`` per new or changed tool, all or none; 201 if any was recorded,
    200 if all were registered already. Tools whose names cannot form an address (or that
    break another catalog rule) are listed under ``skipped``. 502 if the server cannot be
    reached or refuses; 422 if the command names no program or the server lists no tool
    that can be registered.
    """
    probe = registration_of(_server_probe(data))
    if probe.command is not None and shutil.which(probe.command[0]) is None:
        reason = f"no program {probe.command[0]!r} was found (give its path, or a name on PATH)"
        raise ToolRuleError("command", reason)
    from services.tools.mcp import list_server_tools  # the MCP SDK loads on first use

    try:
        listed = await list_server_tools(
            data.name,
            endpoint=probe.endpoint,
            command=probe.command,
            allowed=state.outbound_allow,
        )
    except ToolCallError as exc:
        raise UpstreamFailed(exc.message) from None
    tools, skipped = _importable(listed, probe)
    if not tools:
        errors = [FieldError(f"tools.{s.name}", s.reason) for s in skipped] or None
        detail = f"the MCP server lists no tool that can be registered ({len(listed)} listed)"
        raise Invalid(detail, errors=errors)
    async with state.pool.acquire() as conn, conn.transaction():
        appends = []
        for tool in tools:
            change = await _change(conn, tool)
            if change is not None:
                appends.append(change)
        if appends:
            await append_in_transaction(conn, appends, _meta(request), state.projections)
    body = McpImport([tool_view(tool) for tool in tools], skipped)
    return Response(body, status_code=201 if appends else 200)


async def _change(conn: Connection, tool: ToolRegistered) -> StreamAppend | None:
    """The append that registers ``tool``, or None if it is registered exactly so already.

    Rows are locked in address order (the tools come sorted), so two imports cannot deadlock.
    """
    current = await load_tool(conn, tool.address, lock=True)
    if current is not None and current.registration == tool:
        return None
    at = current.version if current else await stream_version(conn, tool_stream(tool.address))
    return StreamAppend(tool_stream(tool.address), [tool], expected_version=at)


ROUTES: list[Any] = [register_tool, get_tools, get_tool, remove_tool, import_mcp_server]
