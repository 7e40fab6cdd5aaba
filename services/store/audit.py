"""Filtered reads of the log, for audits and replays: by stream, type, actor, correlation,
position range and time range, always in position order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.base import Connection
from services.store.events import StoredEvent, stored_event

_SELECT = "SELECT position, stream, version, type, data::text, meta::text, recorded_at FROM events"


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

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters ($1 is always ``after``)."""
        clauses, args = ["position > $1"], [self.after]
        conditions: list[tuple[str, Any]] = [
            ("stream = ${}", self.stream),
            ("type = ANY(${}::text[])", list(self.types) or None),
            ("meta->>'actor' = ${}", self.actor),
            ("meta->>'correlation_id' = ${}", self.correlation_id),
            ("position < ${}", self.before),
            ("recorded_at >= ${}", self.since),
            ("recorded_at <= ${}", self.until),
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
    rows = await conn.fetch(
        f"{_SELECT} WHERE {condition} ORDER BY position {order} LIMIT ${len(args) + 1}",
        *args,
        limit,
    )
    return [stored_event(row) for row in rows]


async def count_filtered(conn: Connection, where: EventFilter) -> int:
    """How many events match (for progress reports)."""
    condition, args = where.where()
    count = await conn.fetchval(f"SELECT count(*) FROM events WHERE {condition}", *args)  # noqa: S608 - fixed clauses
    return int(count)
