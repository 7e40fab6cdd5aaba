"""Filtered reads of the log, for audits and replays: by stream, type, actor, correlation,
position range and time range, always in position order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.base import Connection
from services.store.events import StoredEvent, stored_event

_SELECT = "SELECT position, stream, version, type, data::text, meta::text, recorded_at FROM events"
# An agent's view: only the events it owns (projections/ownership.py), found by one range scan
# of its (owner, position) rows; token hashes and secret ciphertexts are never shown to it.
_SELECT_OWNED = """
SELECT e.position, e.stream, e.version, e.type,
       (CASE e.type WHEN 'agent.token_issued' THEN e.data - 'token_sha256'
                    WHEN 'secret.stored' THEN e.data - 'ciphertext'
                    ELSE e.data END)::text AS data,
       e.meta::text AS meta, e.recorded_at
FROM event_owner o JOIN events e ON e.position = o.position
"""


@dataclass(frozen=True)
class EventFilter:
    """Which events to read; every condition given must hold. Positions are exclusive bounds
    (``after`` < position < ``before``), times inclusive (``since`` <= recorded_at <= ``until``).
    """

    stream: str | None = None
    types: tuple[str, ...] = ()
    actor: str | None = None
    correlation_id: str | None = None
    after: int = 0
    before: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Only the events this agent owns (None: every event, as the admin and operators see).
    reader: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters ($1 is always ``after``)."""
        # An agent's bounds go on its own rows' positions, so they bound its index scan.
        position = "o.position" if self.reader is not None else "e.position"
        clauses, args = [f"{position} > $1"], [self.after]
        conditions: list[tuple[str, Any]] = [
            ("o.owner = ${}", self.reader),
            ("e.stream = ${}", self.stream),
            ("e.type = ANY(${}::text[])", list(self.types) or None),
            ("e.meta->>'actor' = ${}", self.actor),
            ("e.meta->>'correlation_id' = ${}", self.correlation_id),
            (f"{position} < ${{}}", self.before),
            ("e.recorded_at >= ${}", self.since),
            ("e.recorded_at <= ${}", self.until),
        ]
        for template, value in conditions:
            if value is not None:
                args.append(value)
                clauses.append(template.format(len(args)))
        return " AND ".join(clauses), args


async def read_filtered(
    conn: Connection, where: EventFilter, limit: int, *, newest_first: bool = False
) -> list[StoredEvent]:
    """Up to ``limit`` matching events, in position order (or the latest first)."""
    condition, args = where.where()
    order = "DESC" if newest_first else "ASC"
    # An agent's pages follow its own rows' order (o.position), which its key already sorts.
    rows = await conn.fetch(
        f"{_source(where)} WHERE {condition} ORDER BY {_order(where)} {order} "
        f"LIMIT ${len(args) + 1}",
        *args,
        limit,
    )
    return [stored_event(row) for row in rows]


async def count_filtered(conn: Connection, where: EventFilter) -> int:
    """How many events match (for progress reports)."""
    condition, args = where.where()
    source = _FROM_OWNED if where.reader is not None else "events e"
    count = await conn.fetchval(f"SELECT count(*) FROM {source} WHERE {condition}", *args)  # noqa: S608 - fixed clauses
    return int(count)


_FROM_OWNED = "event_owner o JOIN events e ON e.position = o.position"


def _source(where: EventFilter) -> str:
    return _SELECT_OWNED if where.reader is not None else f"{_SELECT} e"


def _order(where: EventFilter) -> str:
    return "o.position" if where.reader is not None else "e.position"
