"""The tool catalog's use cases: register, replace and remove tools, import an MCP server's
tools (admin); read them (reads of the catalog itself are in tool_store)."""

from __future__ import annotations

import re
import shutil

import msgspec

from domain.events import ToolRegistered, ToolRemoved, tool_stream
from domain.outbound import Network
from domain.tools import BUILTIN_TOOLS, ToolRuleError, same_registration, validate_registration
from projections.base import Connection
from services.application.context import Answer, Backend, Caller, OperationResult
from services.application.errors import Conflict, FieldError, Invalid, NotFound, UpstreamFailed
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


async def register_tool(
    caller: Caller, backend: Backend, data: ToolBody, python_allow: tuple[str, ...]
) -> OperationResult:
    """Record ``tool.registered``: created for a new address, done when it replaces one.

    Registering exactly what is already registered records nothing (done).
    ``python_allow`` names the modules a ``python`` tool may call.
    """
    tool = registration_of(data, python_allow)
    async with backend.pool.acquire() as conn, conn.transaction():
        current = await load_tool(conn, tool.address, lock=True)
        if current is not None and same_registration(current.registration, tool):
            return OperationResult(Answer.DONE, tool_view(tool))
        # A removed tool's stream goes on from where it stopped; a concurrent first
        # registration of the same address makes this append a version conflict.
        at = current.version if current else await stream_version(conn, tool_stream(tool.address))
        append = StreamAppend(tool_stream(tool.address), [tool], expected_version=at)
        await append_in_transaction(conn, [append], caller.meta(), backend.projections)
    return OperationResult(Answer.CREATED if current is None else Answer.DONE, tool_view(tool))


async def read_tools(backend: Backend) -> ToolList:
    """Every tool, builtin and registered, sorted by address."""
    async with backend.pool.acquire() as conn:
        return ToolList(await list_tools(conn))


async def read_tool(backend: Backend, address: str) -> ToolView:
    """One tool by address; not found if it is neither builtin nor registered."""
    if address in BUILTIN_TOOLS:
        return tool_view(BUILTIN_TOOLS[address])
    async with backend.pool.acquire() as conn:
        current = await load_tool(conn, address)
    if current is None:
        raise _no_tool(address)
    return tool_view(current.registration)


async def remove_tool(caller: Caller, backend: Backend, address: str) -> OperationResult:
    """Record ``tool.removed``; tasks using the tool are refused from now on. Builtins: a
    conflict."""
    if address in BUILTIN_TOOLS:
        raise Conflict(f"{address!r} is a builtin tool and cannot be removed")
    async with backend.pool.acquire() as conn, conn.transaction():
        current = await load_tool(conn, address, lock=True)
        if current is None:
            raise _no_tool(address)
        removed = ToolRemoved(address=address)
        append = StreamAppend(tool_stream(address), [removed], expected_version=current.version)
        await append_in_transaction(conn, [append], caller.meta(), backend.projections)
    return OperationResult(Answer.DELETED, None)


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


async def import_mcp_server(
    caller: Caller,
    backend: Backend,
    data: McpServerBody,
    outbound_allow: tuple[Network, ...] | None,
) -> OperationResult:
    """Register every tool the server lists (``tools/list``) as ``<name>.<tool name>``.

    One ``tool.registered`` per new or changed tool, all or none: created if any was recorded,
    done if all were registered already. Tools whose names cannot form an address (or that
    break another catalog rule) are listed under ``skipped``. Upstream failed if the server
    cannot be reached (within ``outbound_allow``) or refuses; invalid if the command names no
    program or the server lists no tool that can be registered.
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
            allowed=outbound_allow,
        )
    except ToolCallError as exc:
        raise UpstreamFailed(exc.message) from None
    tools, skipped = _importable(listed, probe)
    if not tools:
        errors = [FieldError(f"tools.{s.name}", s.reason) for s in skipped] or None
        detail = f"the MCP server lists no tool that can be registered ({len(listed)} listed)"
        raise Invalid(detail, errors=errors)
    async with backend.pool.acquire() as conn, conn.transaction():
        appends = []
        for tool in tools:
            change = await _change(conn, tool)
            if change is not None:
                appends.append(change)
        if appends:
            await append_in_transaction(conn, appends, caller.meta(), backend.projections)
    body = McpImport([tool_view(tool) for tool in tools], skipped)
    return OperationResult(Answer.CREATED if appends else Answer.DONE, body)


async def _change(conn: Connection, tool: ToolRegistered) -> StreamAppend | None:
    """The append that registers ``tool``, or None if it is registered exactly so already.

    Rows are locked in address order (the tools come sorted), so two imports cannot deadlock.
    """
    current = await load_tool(conn, tool.address, lock=True)
    if current is not None and same_registration(current.registration, tool):
        return None
    at = current.version if current else await stream_version(conn, tool_stream(tool.address))
    return StreamAppend(tool_stream(tool.address), [tool], expected_version=at)
