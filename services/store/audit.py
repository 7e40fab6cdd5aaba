"""Filtered reads of the log, for audits and replays: by stream, type, actor, correlation,
a range of the global order and a time range, always in the log's order (order.py) and only
below the visibility horizon, so a page once read never changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.base import Connection
from services.store.events import _SELECT, StoredEvent, stored_event
from services.store.order import HORIZON, START, Cursor


@dataclass(frozen=True)
class EventFilter:
    """Which events to read; every condition given must hold. ``after``/``before`` are
    exclusive bounds in the global order, ``first``/``last`` inclusive ones, times inclusive
    (``since`` <= recorded_at <= ``until``). ``horizon``: only transactions below this id
    (a replay fixes it when it starts, so it has an end).
    """

    stream: str | None = None
    types: tuple[str, ...] = ()
    actor: str | None = None
    correlation_id: str | None = None
    after: Cursor = START
    before: Cursor | None = None
    first: Cursor | None = None
    last: Cursor | None = None
    since: datetime | None = None
    until: datetime | None = None
    horizon: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters ($1, $2 are always ``after``)."""
        clauses = ["(txid, position) > ($1::xid8, $2::bigint)", f"txid < {HORIZON}"]
        args: list[Any] = [self.after.txid, self.after.position]
        for bound, op in ((self.before, "<"), (self.first, ">="), (self.last, "<=")):
            if bound is not None:
                args += [bound.txid, bound.position]
                clauses.append(f"(txid, position) {op} (${len(args) - 1}::xid8, ${len(args)})")
        conditions: list[tuple[str, Any]] = [
            ("stream = ${}", self.stream),
            ("type = ANY(${}::text[])", list(self.types) or None),
            ("meta->>'actor' = ${}", self.actor),
            ("meta->>'correlation_id' = ${}", self.correlation_id),
            ("recorded_at >= ${}", self.since),
            ("recorded_at <= ${}", self.until),
            ("txid < ${}::xid8", self.horizon),
        ]
        for template, value in conditions:
            if value is not None:
                args.append(value)
                clauses.append(template.format(len(args)))
        return " AND ".join(clauses), args


async def read_filtered(
    conn: Connection, where: EventFilter, limit: int, *, newest_first: bool = False
) -> list[StoredEvent]:
    """Up to ``limit`` matching events, in the log's order (or the latest first)."""
    condition, args = where.where()
    order = "txid DESC, position DESC" if newest_first else "txid, position"
    rows = await conn.fetch(
        f"{_SELECT} WHERE {condition} ORDER BY {order} LIMIT ${len(args) + 1}",
        *args,
        limit,
    )
    return [stored_event(row) for row in rows]


async def count_filtered(conn: Connection, where: EventFilter) -> int:
    """How many events match (for progress reports)."""
    condition, args = where.where()
    count = await conn.fetchval(f"SELECT count(*) FROM events WHERE {condition}", *args)  # noqa: S608 - fixed clauses
    return int(count)


async def current_horizon(conn: Connection) -> int:
    """The visibility horizon now: every transaction below it has ended."""
    return int(await conn.fetchval(f"SELECT {HORIZON}"))
