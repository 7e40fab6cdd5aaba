"""A read-model row as the rules see it: column name to value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import msgspec

from domain.envelope import Envelope

Row: TypeAlias = dict[str, Any]
# (the row before the event or None, the event) -> the row after it, or None for no row.
Rule: TypeAlias = Callable[[Row | None, Envelope], Row | None]

_encoder = msgspec.json.Encoder()


def updated(row: Row | None, **columns: Any) -> Row | None:
    """``row`` with ``columns`` set; None stays None (an UPDATE of no row changes nothing)."""
    if row is None:
        return None
    return {**row, **columns}


def json_text(value: Any) -> str:
    """A jsonb column's value as the rows store it (the encoding the log's events use)."""
    return _encoder.encode(value).decode()


def plain(value: Any) -> Any:
    """A structured value (structs, dicts, instants) as JSON would give it back: what a jsonb
    column holds, so a row folded in memory equals one read back from the table (in one pass:
    msgspec converts instants and keys as its JSON encoder writes them)."""
    return msgspec.to_builtins(value, str_keys=True)


@dataclass(frozen=True)
class Model:
    """One table kept by rules: its key column, every column, which hold JSON values the rules
    change in part (decoded when read), and the rule for each event type it handles."""

    table: str
    key: str
    columns: tuple[str, ...]
    structured: frozenset[str]
    rules: dict[str, Callable[..., Row | None]]
    key_of: Callable[[Envelope], str]
    # The stream of a row's events: at its version 1 the stream is new, so is the row.
    stream_of: Callable[[str], str]
    # Event types whose rule removes the row whatever it held.
    removes: frozenset[str] = frozenset()
    # jsonb columns the rules hold as JSON text (written with json_text), not as values.
    json_text_columns: frozenset[str] = frozenset()

    @property
    def handles(self) -> frozenset[str]:
        """The event types this table changes on: its rules' table, listed once."""
        return frozenset(self.rules)

    def is_new(self, envelope: Envelope) -> bool:
        """Whether the event is the first of its row's stream, so no row exists before it."""
        return envelope.version == 1 and envelope.stream == self.stream_of(self.key_of(envelope))
