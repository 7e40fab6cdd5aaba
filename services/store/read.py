"""Reading the whole log in its global order, only below the visibility horizon.

See services/store/order.py for why this order is exact: a read returns the events after a
cursor whose transactions have all ended, in (txid, position) order, so the next read, from
the last event returned, can only find events after it.
"""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

from domain.envelope import Envelope, envelope_from_row
from projections.base import Connection
from services.store.errors import UnknownCursor
from services.store.events import StoredEvent, stored_event
from services.store.order import HORIZON, MAX_POSITION, START, Cursor, is_position

# ``final``: the row's transaction is below the horizon. Rows come in (txid, position) order,
# so the final ones are a prefix; a non-final row after them means an event is committed (or
# still being written) above the horizon and a reader should look again soon.
_AFTER = f"""
SELECT position, stream, version, type, data::text, meta::text, recorded_at, txid,
       txid < {HORIZON} AS final
FROM events
WHERE (txid, position) > ($1::xid8, $2::bigint)
ORDER BY txid, position LIMIT $3
"""  # noqa: S608 - a fixed expression, no input


class Page(NamedTuple):
    """Events read, and whether more are already written above the horizon."""

    events: list[StoredEvent]
    held_back: bool


async def read_page(conn: Connection, *, after: Cursor, limit: int) -> Page:
    """Up to ``limit`` events after ``after`` in the global order, and whether any were held
    back by a transaction still open below them."""
    rows = await conn.fetch(_AFTER, after.txid, after.position, limit)
    final = [row for row in rows if row["final"]]
    return Page([stored_event(row) for row in final], len(final) < len(rows))


async def settle(conn: Connection, *, within: float = 1.0) -> None:
    """Wait, at most ``within`` seconds, until every transaction begun before this call has
    ended, so a reader that asks after its own write finished reads that write.

    Transactions are short, so this usually returns at once or within milliseconds; one left
    open (services/store/horizon.py names it) only delays the answer by ``within``, which then
    holds every event below the horizon, as always.
    """
    target = await conn.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())")
    deadline = time.monotonic() + within
    while not await conn.fetchval(f"SELECT {HORIZON} >= $1::xid8", target):
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.005)


async def read_stored(conn: Connection, *, after: Cursor, limit: int) -> list[StoredEvent]:
    """Up to ``limit`` events after ``after`` in the global order, as stored."""
    return (await read_page(conn, after=after, limit=limit)).events


async def read_all(conn: Connection, *, after: Cursor, limit: int) -> list[Envelope]:
    """As read_stored, decoded."""
    rows = await conn.fetch(_AFTER, after.txid, after.position, limit)
    return [envelope_from_row(row) for row in rows if row["final"]]


async def cursor_at(conn: Connection, position: int) -> Cursor:
    """The cursor of the event at an old-style ``position`` cursor (``position > n`` reads).

    Events written before the global order existed (txid 0) keep their meaning exactly; a
    later position is the event at that position; a later position with no event (an aborted
    append's) names no place in the order: UnknownCursor.
    """
    if position == 0:
        return START
    txid = await conn.fetchval("SELECT txid FROM events WHERE position = $1", position)
    if txid is not None:
        return Cursor(int(txid), position)
    later = await conn.fetchval("SELECT min(position) FROM events WHERE txid <> '0'::xid8")
    if later is None or position < later:
        return Cursor(0, position)
    raise UnknownCursor(f"no event at position {position}; continue from an event's cursor")


async def parse_cursor(conn: Connection, text: str) -> Cursor:
    """A cursor's text form (``<n>-<n>``) or an old position; UnknownCursor if neither."""
    if is_position(text):
        if int(text) > MAX_POSITION:
            raise UnknownCursor(f"no event at position {text}: positions end at {MAX_POSITION}")
        return await cursor_at(conn, int(text))
    try:
        return Cursor.from_entry_id(text)
    except ValueError as exc:
        raise UnknownCursor(str(exc)) from exc
