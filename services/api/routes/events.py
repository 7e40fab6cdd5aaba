"""The event log over HTTP: read it by position (filtered, for audits), and publish events."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.params import JSONBody, QueryParameter

from projections.base import Connection
from services.api.auth import principal_of, requires
from services.api.calls import IdempotencyKey, caller_of
from services.api.cursors import DEFAULT_LIMIT, Limit
from services.api.cursors import Cursor as PageCursor
from services.api.state import AppState
from services.application import events as ops
from services.application.errors import invalid
from services.application.events import Published, PublishEvent
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


def _types(raw: list[str] | None) -> tuple[str, ...]:
    """``type`` may repeat and each value may be a comma list: ``type=a,b&type=c``."""
    for value in raw or ():
        if not _TYPES.match(value):
            reason = f"must be event types separated by commas (at most {MAX_TYPES})"
            raise invalid("type", reason)
    return tuple(kind for value in raw or () for kind in value.split(","))


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
    return found


Text = Annotated[str | None, QueryParameter(min_length=1, max_length=500)]
Instant = Annotated[str | None, QueryParameter(format="date-time", max_length=64)]


@get("/events", guards=[requires("events:read")], tags=["events"], summary="Read the log forward")
async def list_events(
    request: Request[Any, Any, Any],
    state: AppState,
    after: Annotated[
        str,
        QueryParameter(
            max_length=60,
            description="Return events after this one: its cursor (an event's `cursor`,"
            " `<n>-<n>`), or an old position",
        ),
    ] = "0",
    limit: Limit = DEFAULT_LIMIT,
    cursor: PageCursor = None,
    before: Annotated[
        str | None,
        QueryParameter(max_length=60, description="Only events before this one (cursor)"),
    ] = None,
    stream: Annotated[Text, QueryParameter(description="Only this stream, e.g. run-<id>")] = None,
    event_type: Annotated[
        list[str] | None,
        QueryParameter(
            name="type",
            description="Only these types (repeat, or a comma list)",
            max_items=MAX_TYPES,
            # Litestar applies `pattern` to the list itself; each item is what needs it.
            schema_extra={"items": {"type": "string", "pattern": TYPES_PATTERN}},
        ),
    ] = None,
    actor: Annotated[Text, QueryParameter(description="Only events caused by this actor")] = None,
    correlation_id: Annotated[Text, QueryParameter(description="Only this correlation id")] = None,
    since: Annotated[
        Instant, QueryParameter(description="Only events recorded at or after this")
    ] = None,
    until: Annotated[
        Instant, QueryParameter(description="Only events recorded at or before this")
    ] = None,
) -> EventPage:
    """Matching events after ``after`` (and after ``cursor``), in the log's global order: for
    an agent, only events of its own streams and the external events it published (the admin
    reads all).

    Only events whose transactions have all ended are listed (see services/store/order.py),
    so a page once read never gains an event in front of its ``next``.
    """
    async with state.pool.acquire() as conn:
        await settle(conn)  # a client's own writes, finished before it asked, are on the page
        where = EventFilter(
            stream=stream,
            types=_types(event_type),
            actor=actor,
            correlation_id=correlation_id,
            after=max(
                await _cursor(conn, "after", after),
                await _cursor(conn, "cursor", cursor) if cursor is not None else START,
            ),
            before=None if before is None else await _bound(conn, before),
            since=_instant("since", since),
            until=_instant("until", until),
            reader=principal_of(request).reader,
        )
        items = await read_filtered(conn, where, limit)
    return EventPage(items, items[-1].cursor if len(items) == limit else None)


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


@post(
    "/events",
    guards=[requires("events:publish")],
    status_code=202,
    tags=["events"],
    summary="Publish an external event",
)
async def publish_event(
    request: Request[Any, Any, Any],
    state: AppState,
    data: JSONBody[PublishEvent],
    idempotency_key: IdempotencyKey = None,
) -> Published:
    """Record an ``event.received`` and queue a run of every event task it matches (and of
    every condition task whose condition it turns true); a repeated idempotency key returns
    the first answer and fires nothing (the key is the body's ``idempotency_key``, else the
    header)."""
    caller = caller_of(request, idempotency_key=idempotency_key)
    return await ops.publish_event(caller, state.backend, data)
