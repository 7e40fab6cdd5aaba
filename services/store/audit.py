"""Filtered reads of the log, for audits and replays: by stream, type, actor, correlation,
a range of the global order and a time range, always in the log's order (order.py) and only
below the visibility horizon, so a page once read never changes. An agent reads only the
events it owns (projections/ownership.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.base import Connection
from services.store.events import StoredEvent, stored_event
from services.store.order import HORIZON, START, Cursor

_SELECT = """
SELECT e.position, e.stream, e.version, e.type, e.data::text AS data, e.meta::text AS meta,
       e.recorded_at, e.txid
FROM events e
"""
# An agent's view: only the events it owns, found through its (owner, position) rows; token
# hashes and secret ciphertexts are never shown to it.
_FROM_OWNED = "event_owner o JOIN events e ON e.position = o.position"
_SELECT_OWNED = """
SELECT e.position, e.stream, e.version, e.type,
       (CASE e.type WHEN 'agent.token_issued' THEN e.data - 'token_sha256'
                    WHEN 'secret.stored' THEN e.data - 'ciphertext'
                    ELSE e.data END)::text AS data,
       e.meta::text AS meta, e.recorded_at, e.txid
FROM event_owner o JOIN events e ON e.position = o.position
"""


@dataclass(frozen=True)
class EventFilter:
    """Which events to read; every condition given must hold. ``after``/``before`` are
    exclusive bounds in the global order, ``first``/``last`` inclusive ones, times inclusive
    (``since`` <= recorded_at <= ``until``). ``horizon``: only transactions below this id
    (a replay fixes it when it starts, so it has an end). ``reader``: only the events this
    agent owns (None: every event, as the admin and operators see).
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
    reader: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters ($1, $2 are always ``after``)."""
        clauses = ["(e.txid, e.position) > ($1::xid8, $2::bigint)", f"e.txid < {HORIZON}"]
        args: list[Any] = [self.after.txid, self.after.position]
        for bound, op in ((self.before, "<"), (self.first, ">="), (self.last, "<=")):
            if bound is not None:
                args += [bound.txid, bound.position]
                clauses.append(f"(e.txid, e.position) {op} (${len(args) - 1}::xid8, ${len(args)})")
        conditions: list[tuple[str, Any]] = [
            ("o.owner = ${}", self.reader),
            ("e.stream = ${}", self.stream),
            ("e.type = ANY(${}::text[])", list(self.types) or None),
            ("e.meta->>'actor' = ${}", self.actor),
            ("e.meta->>'correlation_id' = ${}", self.correlation_id),
            ("e.recorded_at >= ${}", self.since),
            ("e.recorded_at <= ${}", self.until),
            ("e.txid < ${}::xid8", self.horizon),
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
    order = "e.txid DESC, e.position DESC" if newest_first else "e.txid, e.position"
    source = _SELECT_OWNED if where.reader is not None else _SELECT
    rows = await conn.fetch(
        f"{source} WHERE {condition} ORDER BY {order} LIMIT ${len(args) + 1}",
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


async def current_horizon(conn: Connection) -> int:
    """The visibility horizon now: every transaction below it has ended."""
    return int(await conn.fetchval(f"SELECT {HORIZON}"))
