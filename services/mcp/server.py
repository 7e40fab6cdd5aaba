"""The MCP server: tools and resources over the operations the HTTP API uses, same scopes."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

import msgspec
import structlog
from mcp import types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from services.application import runs, tasks
from services.application.context import Backend, Caller
from services.application.errors import Forbidden, NotFound
from services.application.principal import Principal
from services.mcp.arguments import input_schema
from services.mcp.catalog import TOOLS
from services.mcp.errors import invalid_input, non_finite, problem_of
from services.mcp.tools import ToolSpec, plain, task_line

# Who is calling and what to run against, for one request: (principal, correlation id, backend).
Session = Callable[[Any], Awaitable[tuple[Principal, str, Backend]]]
RESOURCE = re.compile(r"^ordinaut://(tasks|runs)/([^/?#]+)$")
_log = structlog.get_logger("ordinaut.mcp")
INSTRUCTIONS = """\
Ordinaut schedules work for agents: tasks fire on cron, RRULE, one-shot or event schedules in \
their own time zone, and run pipelines of tools. Check a rule with preview_schedule, create \
with create_task (give a `key` to make it repeat-safe), follow runs with get_run, decide \
approvals with approve_run / reject_run. Resources: ordinaut://tasks/{id}, ordinaut://runs/{id}."""


def listed_tools() -> list[types.Tool]:
    """The tool list as clients see it (also the snapshot the tests keep)."""
    return [
        types.Tool(
            name=spec.name,
            description=spec.description,
            input_schema=input_schema(spec.arguments),
            annotations=types.ToolAnnotations(
                read_only_hint=spec.read_only, destructive_hint=spec.name == "delete_task"
            ),
        )
        for spec in TOOLS
    ]


def _caller(spec: ToolSpec, principal: Principal, correlation_id: str, raw: bytes) -> Caller:
    fingerprint = hashlib.sha256(f"mcp {spec.name}\n".encode() + raw).hexdigest()
    return Caller(principal, correlation_id, fingerprint=fingerprint)


def tool_error(problem: Any) -> types.CallToolResult:
    """A refusal as a tool error: a one-line text and the problem document as structured content."""
    text = f"{problem.title} ({problem.status}): {problem.detail}"
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=plain(problem),
        is_error=True,
    )


async def call(
    spec: ToolSpec,
    arguments: dict[str, Any],
    principal: Principal,
    correlation_id: str,
    backend: Backend,
) -> types.CallToolResult:
    """Run one tool call; every refusal is a tool error carrying the API's problem document."""
    raw = msgspec.json.encode(arguments)
    try:
        if spec.scope is not None and not principal.allows(spec.scope):
            raise Forbidden(f"this needs the {spec.scope!r} scope")
        if (refused := non_finite(arguments)) is not None:
            return tool_error(refused)  # ``raw`` says null where these numbers were
        try:
            args = msgspec.json.decode(raw, type=spec.arguments)
        except msgspec.ValidationError as exc:
            return tool_error(invalid_input(exc))
        structured, summary = await spec.run(
            _caller(spec, principal, correlation_id, raw), backend, args
        )
    except Exception as exc:  # every failure becomes a tool error, never a broken session
        problem = problem_of(exc, spec.name, correlation_id)
        return tool_error(msgspec.structs.replace(problem, correlation_id=correlation_id))
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=summary)], structured_content=structured
    )


async def read(uri: str, principal: Principal, correlation_id: str, backend: Backend) -> str:
    """A task or run as JSON, for ``ordinaut://tasks/{id}`` and ``ordinaut://runs/{id}``."""
    match = RESOURCE.match(uri)
    if match is None:
        raise MCPError(code=-32002, message=f"no resource {uri!r}")
    kind, ident = match.groups()
    scope = "tasks:read" if kind == "tasks" else "runs:read"
    if not principal.allows(scope):
        raise MCPError(code=-32002, message=f"this needs the {scope!r} scope")
    caller = Caller(principal, correlation_id)
    try:
        if kind == "tasks":
            body = plain(await tasks.read_task(caller, backend, ident))
        else:
            body = plain(await runs.read_run(caller, backend, ident))
    except NotFound as exc:
        raise MCPError(code=-32002, message=exc.detail) from None
    return msgspec.json.encode(body).decode()


TEMPLATES = [
    types.ResourceTemplate(
        name="task",
        uri_template="ordinaut://tasks/{id}",
        mime_type="application/json",
        description="A task as get_task answers it",
    ),
    types.ResourceTemplate(
        name="run",
        uri_template="ordinaut://runs/{id}",
        mime_type="application/json",
        description="A run with every step, as get_run answers it",
    ),
]


def build_server(session: Session) -> Server[Any]:
    """A low-level MCP server whose handlers find the caller through ``session``."""
    specs = {spec.name: spec for spec in TOOLS}
    tools = listed_tools()

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = specs.get(params.name)
        if spec is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"unknown tool {params.name!r}")
        principal, correlation_id, backend = await session(ctx)
        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            result = await call(spec, params.arguments or {}, principal, correlation_id, backend)
            _log.info("mcp tool", tool=spec.name, actor=principal.actor, error=result.is_error)
            return result

    async def list_templates(ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=TEMPLATES)

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[])

    async def read_resource(
        ctx: Any, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        principal, correlation_id, backend = await session(ctx)
        text = await read(str(params.uri), principal, correlation_id, backend)
        contents = types.TextResourceContents(
            uri=params.uri, mime_type="application/json", text=text
        )
        return types.ReadResourceResult(contents=[contents])

    return Server(
        "ordinaut",
        version=version("ordinaut"),
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resource_templates=list_templates,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


__all__ = ["Session", "build_server", "call", "listed_tools", "read", "task_line", "tool_error"]
