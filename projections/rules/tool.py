"""What each event does to a registered tool's row (the `tool` table)."""

from __future__ import annotations

import msgspec

from domain.envelope import Envelope
from domain.events import ToolRegistered, ToolRemoved, tool_stream
from projections.rules.row import Model, Row, Rule, json_text

TABLE = "tool"
KEY = "address"
COLUMNS = ("address", "transport", "definition", "registered_at", "updated_at", "version")


def key_of(envelope: Envelope) -> str:
    """The tool an event changes."""
    event = envelope.event
    assert isinstance(event, ToolRegistered | ToolRemoved)
    return event.address


def definition_text(tool: ToolRegistered) -> str:
    """The registration as the read model stores it: every field, without the type tag."""
    fields = msgspec.to_builtins(tool)
    fields.pop("type", None)
    return json_text(fields)


# A replacement keeps registered_at: it says since when the address has been in the catalog.
def _registered(row: Row | None, envelope: Envelope) -> Row | None:
    tool, at = envelope.event, envelope.recorded_at
    assert isinstance(tool, ToolRegistered)
    return {
        "address": tool.address,
        "transport": tool.transport,
        "definition": definition_text(tool),
        "registered_at": at if row is None else row["registered_at"],
        "updated_at": at,
        "version": envelope.version,
    }


def _removed(row: Row | None, envelope: Envelope) -> Row | None:
    return None


RULES: dict[str, Rule] = {"tool.registered": _registered, "tool.removed": _removed}
MODEL = Model(
    TABLE,
    KEY,
    COLUMNS,
    frozenset(),
    RULES,
    key_of,
    tool_stream,
    removes=frozenset({"tool.removed"}),
    json_text_columns=frozenset({"definition"}),
)
