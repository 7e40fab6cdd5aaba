"""The `tool` read model: the registered tools (builtins are fixed in code, not stored)."""

from __future__ import annotations

import msgspec

from domain.envelope import Envelope
from domain.events import ToolRegistered, ToolRemoved
from projections.base import Connection

# A replacement keeps registered_at: it says since when the address has been in the catalog.
_UPSERT = """
INSERT INTO tool (address, transport, definition, registered_at, updated_at, version)
VALUES ($1, $2, $3::jsonb, $4, $4, $5)
ON CONFLICT (address) DO UPDATE
SET transport = excluded.transport, definition = excluded.definition,
    updated_at = excluded.updated_at, version = excluded.version
"""

_DELETE = "DELETE FROM tool WHERE address = $1"


def definition_json(tool: ToolRegistered) -> str:
    """The registration as the read model stores it: every field, without the type tag."""
    fields = msgspec.to_builtins(tool)
    fields.pop("type", None)
    return msgspec.json.encode(fields).decode()


class ToolProjection:
    """Maintains the `tool` table."""

    name: str = "tool"
    tables: tuple[str, ...] = ("tool",)
    handles: frozenset[str] = frozenset({"tool.registered", "tool.removed"})

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Upsert the tool's row on registration; delete it on removal."""
        match envelope.event:
            case ToolRegistered(address=address, transport=transport) as tool:
                await conn.execute(
                    _UPSERT,
                    address,
                    transport,
                    definition_json(tool),
                    envelope.recorded_at,
                    envelope.version,
                )
            case ToolRemoved(address=address):
                await conn.execute(_DELETE, address)
