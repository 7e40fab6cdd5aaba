"""Reading the event log by position, filtered (for audits): what the caller may see of it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import msgspec

from domain.events import EVENT_TYPES
from projections.base import Connection
from services.application.context import Backend, Caller
from services.application.errors import invalid
from services.application.inputs import instant_reason, representable
from services.application.paging import DEFAULT_LIMIT
from services.store.audit import EventFilter, read_filtered
from services.store.errors import UnknownCursor
from services.store.events import StoredEvent
from services.store.order import START, Cursor
from services.store.read import parse_cursor, settle


class EventPage(msgspec.Struct, frozen=True):
    """A page of the log; pass ``next`` as ``cursor`` to continue (null when caught up).

    Cursors are the events' ``cursor`` values (``<n>-<n>``, also their Redis stream ids): the
    log's one global order, which never changes once read. An old position still works as
    ``after``.
    """

    items: list[StoredEvent]
    next: str | None


_NAME = r"[A-Za-z0-9_.:\-]{1,100}"
MAX_TYPES = 50
# One value of `type`: an event type, or a comma list of up to MAX_TYPES of them.
TYPES_PATTERN = f"^{_NAME}(,{_NAME}){{0,{MAX_TYPES - 1}}}$"
_TYPES = re.compile(TYPES_PATTERN)


def event_types(raw: list[str] | None) -> tuple[str, ...]:
    """``type`` may repeat and each value may be a comma list: ``type=a,b&type=c``; each must
    be a type the log records (domain/events.py), as a filter that can match nothing is a
    mistake worth naming."""
    for value in raw or ():
        if not _TYPES.match(value):
            reason = f"must be event types separated by commas (at most {MAX_TYPES})"
            raise invalid("type", reason)
    kinds = tuple(kind for value in raw or () for kind in value.split(","))
    unknown = [kind for kind in kinds if kind not in EVENT_TYPES]
    if unknown:
        raise invalid("type", f"unknown event type {unknown[0]!r} (e.g. task.created, run.dead)")
    return kinds


def _instant(name: str, value: str | None) -> datetime | None:
    """An RFC 3339 date-time with its offset, as the document says (never a bare number)."""
    if value is None:
        return None
    try:
        found = msgspec.convert(value, datetime, strict=True)
    except msgspec.ValidationError:
        found = None
    if found is None or found.utcoffset() is None:
        reason = "must be an RFC 3339 date-time with a UTC offset (e.g. 2026-01-01T09:00:00Z)"
        raise invalid(name, reason)
    if not representable(found):
        raise invalid(name, instant_reason(found))
    return found


@dataclass(frozen=True)
class EventQuery:
    """Which events to read, as given (each checked by ``read_events``, in this order)."""

    after: str = "0"
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    before: str | None = None
    stream: str | None = None
    types: list[str] | None = None
    actor: str | None = None
    correlation_id: str | None = None
    since: str | None = None
    until: str | None = None


async def read_events(caller: Caller, backend: Backend, query: EventQuery) -> EventPage:
    """Matching events after ``after`` (and after ``cursor``), in the log's global order: for
    an agent, only events of its own streams and the external events it published (the admin
    reads all).

    Only events whose transactions have all ended are listed (see services/store/order.py),
    so a page once read never gains an event in front of its ``next``.
    """
    async with backend.pool.acquire() as conn:
        await settle(conn)  # a client's own writes, finished before it asked, are on the page
        where = EventFilter(
            stream=query.stream,
            types=event_types(query.types),
            actor=query.actor,
            correlation_id=query.correlation_id,
            after=max(
                await _cursor(conn, "after", query.after),
                await _cursor(conn, "cursor", query.cursor) if query.cursor is not None else START,
            ),
            before=None if query.before is None else await _bound(conn, query.before),
            since=_instant("since", query.since),
            until=_instant("until", query.until),
            reader=caller.principal.reader,
        )
        items = await read_filtered(conn, where, query.limit)
    return EventPage(items, items[-1].cursor if len(items) == query.limit else None)


async def _bound(conn: Connection, text: str) -> Cursor:
    """``before``: a place after the log's start (nothing comes before the start)."""
    bound = await _cursor(conn, "before", text)
    if bound == START:
        reason = "must be an event's cursor or a position after the start of the log"
        raise invalid("before", reason)
    return bound


async def _cursor(conn: Connection, name: str, text: str) -> Cursor:
    try:
        return await parse_cursor(conn, text)
    except UnknownCursor as exc:
        raise invalid(name, str(exc)) from None
