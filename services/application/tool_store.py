"""Reads of the tool catalog: builtins from code, registered tools from the `tool` read model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from domain.events import ToolRateLimit, ToolRegistered
from domain.tools import BUILTIN_TOOLS
from projections.base import Connection

_registration = msgspec.json.Decoder(ToolRegistered)
_SELECT_ONE = "SELECT definition::text AS definition, version FROM tool WHERE address = $1"
# Commands lock the row so that replacing and removing one tool run one at a time.
_SELECT_ONE_LOCKED = f"{_SELECT_ONE} FOR UPDATE"


class ToolView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A catalog entry as the API shows it; ``builtin`` tools cannot be replaced or removed."""

    address: str
    transport: str
    description: str | None
    endpoint: str | None
    command: list[str] | None
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    timeout_seconds: float
    scopes: list[str]
    builtin: bool
    rate_limit: ToolRateLimit | None = None
    cost_per_call: float | None = None
    callable: str | None = None


class ToolList(msgspec.Struct, frozen=True):
    """Every tool, builtins and registered ones, sorted by address."""

    items: list[ToolView]


class StoredTool(msgspec.Struct, frozen=True):
    """A registered tool and the version of its stream."""

    registration: ToolRegistered
    version: int


def tool_view(tool: ToolRegistered) -> ToolView:
    """The API's view of a registration or a builtin."""
    return ToolView(
        address=tool.address,
        transport=tool.transport,
        description=tool.description,
        endpoint=tool.endpoint,
        command=None if tool.command is None else list(tool.command),
        input_schema=tool.input_schema,
        output_schema=tool.output_schema,
        timeout_seconds=tool.timeout_seconds,
        scopes=list(tool.scopes),
        builtin=tool.transport == "builtin",
        rate_limit=tool.rate_limit,
        cost_per_call=tool.cost_per_call,
        callable=tool.callable,
    )


async def load_tool(conn: Connection, address: str, *, lock: bool = False) -> StoredTool | None:
    """The registered tool at ``address`` (None if there is none); ``lock`` locks its row."""
    row = await conn.fetchrow(_SELECT_ONE_LOCKED if lock else _SELECT_ONE, address)
    if row is None:
        return None
    return StoredTool(_registration.decode(row["definition"]), row["version"])


async def stream_version(conn: Connection, stream: str) -> int:
    """How many events ``stream`` holds (0 for a new one)."""
    version: int | None = await conn.fetchval(
        "SELECT max(version) FROM events WHERE stream = $1", stream
    )
    return version or 0


async def list_tools(conn: Connection) -> list[ToolView]:
    """Builtins and registered tools, sorted by address."""
    rows = await conn.fetch("SELECT definition::text AS definition FROM tool")
    registered = [_registration.decode(row["definition"]) for row in rows]
    tools = [*BUILTIN_TOOLS.values(), *registered]
    return [tool_view(tool) for tool in sorted(tools, key=lambda tool: tool.address)]


def builtin_tool_scopes() -> dict[str, tuple[str, ...]]:
    """The builtin tools' addresses with their scopes: all a payload without steps needs."""
    return {address: tool.scopes for address, tool in BUILTIN_TOOLS.items()}


def uses_tools(payload: object) -> bool:
    """Whether a task payload has pipeline steps (and so needs the registered tools)."""
    return not isinstance(payload, Mapping) or bool(payload.get("pipeline"))


async def tool_scopes(conn: Connection) -> dict[str, tuple[str, ...]]:
    """Every address a pipeline step may use (builtins and registered), with its scopes."""
    rows = await conn.fetch(
        "SELECT address, ARRAY(SELECT jsonb_array_elements_text(coalesce("
        "definition->'scopes', '[]'))) AS scopes FROM tool"
    )
    scopes = builtin_tool_scopes()
    scopes.update((row["address"], tuple(row["scopes"])) for row in rows)
    return scopes


async def known_tool_addresses(conn: Connection) -> frozenset[str]:
    """Every address a pipeline step may use: the builtins and the registered tools."""
    rows = await conn.fetch("SELECT address FROM tool")
    return frozenset(BUILTIN_TOOLS).union(row["address"] for row in rows)
