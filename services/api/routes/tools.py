"""The tool catalog: thin HTTP adapters over services/application/tools (and tool_store)."""

from __future__ import annotations

from typing import Any

from litestar import Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from services.api.auth import requires
from services.api.calls import respond
from services.api.state import AppState
from services.application import tools as ops
from services.application.context import Backend, Caller
from services.application.principal import ADMIN_SCOPE
from services.application.tool_bodies import ToolBody
from services.application.tool_store import ToolList, ToolView
from services.application.tools import McpImport, McpServerBody


@post("/tools", guards=[requires(ADMIN_SCOPE)], tags=["tools"], summary="Register a tool")
async def register_tool(
    caller: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    state: AppState,
    data: JSONBody[ToolBody],
) -> Response[ToolView]:
    """Record ``tool.registered``: 201 for a new address, 200 when it replaces a registration.

    Registering exactly what is already registered records nothing and answers 200.
    """
    return respond(await ops.register_tool(caller, backend, data, state.python_allow))


@get("/tools", guards=[requires("tasks:read")], tags=["tools"], summary="List tools")
async def get_tools(backend: NamedDependency[Backend]) -> ToolList:
    """Every tool, builtin and registered, sorted by address."""
    return await ops.read_tools(backend)


@get("/tools/{address:str}", guards=[requires("tasks:read")], tags=["tools"], summary="Read a tool")
async def get_tool(backend: NamedDependency[Backend], address: FromPath[str]) -> ToolView:
    """One tool by address; 404 if it is neither builtin nor registered."""
    return await ops.read_tool(backend, address)


@delete(
    "/tools/{address:str}",
    guards=[requires(ADMIN_SCOPE)],
    tags=["tools"],
    status_code=204,
    summary="Remove a tool",
)
async def remove_tool(
    caller: NamedDependency[Caller], backend: NamedDependency[Backend], address: FromPath[str]
) -> None:
    """Record ``tool.removed``; tasks using the tool are refused from now on. Builtins: 409."""
    await ops.remove_tool(caller, backend, address)


@post(
    "/tools/mcp_servers",
    guards=[requires(ADMIN_SCOPE)],
    tags=["tools"],
    summary="Import an MCP server's tools",
)
async def import_mcp_server(
    caller: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    state: AppState,
    data: JSONBody[McpServerBody],
) -> Response[McpImport]:
    """Register every tool the server lists (``tools/list``) as ``<name>.<tool name>``.

    One ``tool.registered`` per new or changed tool, all or none; 201 if any was recorded,
    200 if all were registered already. Tools whose names cannot form an address (or that
    break another catalog rule) are listed under ``skipped``. 502 if the server cannot be
    reached or refuses; 422 if the command names no program or the server lists no tool
    that can be registered.
    """
    return respond(await ops.import_mcp_server(caller, backend, data, state.outbound_allow))


ROUTES: list[Any] = [register_tool, get_tools, get_tool, remove_tool, import_mcp_server]
