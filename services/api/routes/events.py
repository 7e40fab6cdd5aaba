"""The event log over HTTP: read it by position (filtered, for audits), and publish events."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, QueryParameter

from projections.base import Connection
from services.api.auth import requires
from services.api.calls import backend_of, caller_of
from services.api.operations import events as ops
from services.api.operations.events import Published, PublishEvent
from services.api.problems import ApiError, FieldError
from services.store.audit import EventFilter, read_filtered
from services.store.errors import UnknownCursor
from services.store.events import StoredEvent
from services.store.order import Cursor
from services.store.read import parse_cursor


class EventPage(msgspec.Struct, frozen=True):
    """A page of the log; pass ``next`` as ``after`` to continue (null when caught up).

    Cursors are the events' ``cursor`` values (``<n>-<n>``, also their Redis stream ids): the
    log's one global order, which never changes once read. An old position cursor still works.
    """

    items: list[StoredEvent]
    next: str | None


_TYPE = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
MAX_TYPES = 50


def _types(raw: list[str] | None) -> tuple[str, ...]:
    """``type`` may repeat and each value may be a comma list: ``type=a,b&type=c``."""
    types = tuple(t.strip() for value in raw or () for t in value.split(",") if t.strip())
    for kind in types:
        if not _TYPE.match(kind):
            raise ApiError(422, "Invalid request", f"type: {kind[:100]!r} is not an event type",
                           [FieldError("type", "is not an event type")])  # fmt: skip
    if len(types) > MAX_TYPES:
        raise ApiError(422, "Invalid request", f"type: at most {MAX_TYPES} types",
                       [FieldError("type", f"at most {MAX_TYPES} types")])  # fmt: skip
    return types


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        reason = "must include a UTC offset (e.g. Z or +02:00)"
        raise ApiError(422, "Invalid request", f"{name}: {reason}", [FieldError(name, reason)])
    return value


Text = Annotated[str | None, QueryParameter(min_length=1, max_length=500)]


@get("/events", guards=[requires("events:read")], tags=["events"], summary="Read the log forward")
async def list_events(
    state: State,
    after: Annotated[
        str,
        QueryParameter(
            max_length=60,
            description="Return events after this one: its cursor (a page's `next`, or an"
            " event's `cursor`, `<n>-<n>`), or an old position",
        ),
    ] = "0",
    limit: Annotated[int, QueryParameter(ge=1, le=1000, description="At most this many")] = 100,
    before: Annotated[
        str | None,
        QueryParameter(max_length=60, description="Only events before this one (cursor)"),
    ] = None,
    stream: Annotated[Text, QueryParameter(description="Only this stream, e.g. run-<id>")] = None,
    event_type: Annotated[
        list[str] | None,
        QueryParameter(name="type", description="Only these types (repeat, or a comma list)"),
    ] = None,
    actor: Annotated[Text, QueryParameter(description="Only events caused by this actor")] = None,
    correlation_id: Annotated[Text, QueryParameter(description="Only this correlation id")] = None,
    since: Annotated[
        datetime | None, QueryParameter(description="Only events recorded at or after this")
    ] = None,
    until: Annotated[
        datetime | None, QueryParameter(description="Only events recorded at or before this")
    ] = None,
) -> EventPage:
    """Matching events after ``after``, in the log's global order.

    Only events whose transactions have all ended are listed (see services/store/order.py),
    so a page once read never gains an event in front of its ``next``.
    """
    async with state.pool.acquire() as conn:
        where = EventFilter(
            stream=stream,
            types=_types(event_type),
            actor=actor,
            correlation_id=correlation_id,
            after=await _cursor(conn, "after", after),
            before=None if before is None else await _cursor(conn, "before", before),
            since=_aware("since", since),
            until=_aware("until", until),
        )
        items = await read_filtered(conn, where, limit)
    return EventPage(items, items[-1].cursor if len(items) == limit else None)


async def _cursor(conn: Connection, name: str, text: str) -> Cursor:
    try:
        return await parse_cursor(conn, text)
    except UnknownCursor as exc:
        raise ApiError(422, "Invalid request", f"{name}: {exc}",
                       [FieldError(name, str(exc))]) from None  # fmt: skip


@post(
    "/events",
    guards=[requires("events:publish")],
    status_code=202,
    tags=["events"],
    summary="Publish an external event",
)
async def publish_event(
    request: Request[Any, Any, Any], state: State, data: JSONBody[PublishEvent]
) -> Published:
    """Record an ``event.received`` and queue a run of every event task it matches (and of
    every condition task whose condition it turns true); a repeated idempotency key returns
    the first answer and fires nothing."""
    return await ops.publish_event(caller_of(request), backend_of(state), data)
