"""The event log over HTTP: read it by position (filtered, for audits), and publish events.

Thin HTTP adapters over services/application/event_log and services/application/events.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from services.api.auth import requires
from services.api.calls import IdempotencyKey, caller_of
from services.api.cursors import DEFAULT_LIMIT, Limit
from services.api.cursors import Cursor as PageCursor
from services.application import events as ops
from services.application.context import Backend, Caller
from services.application.event_log import (
    MAX_TYPES,
    TYPES_PATTERN,
    EventPage,
    EventQuery,
    read_events,
)
from services.application.events import Published, PublishEvent

Text = Annotated[str | None, QueryParameter(min_length=1, max_length=500)]
Instant = Annotated[str | None, QueryParameter(format="date-time", max_length=64)]


@get("/events", guards=[requires("events:read")], tags=["events"], summary="Read the log forward")
async def list_events(
    caller: NamedDependency[Caller],
    backend: NamedDependency[Backend],
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
    query = EventQuery(
        after=after,
        limit=limit,
        cursor=cursor,
        before=before,
        stream=stream,
        types=event_type,
        actor=actor,
        correlation_id=correlation_id,
        since=since,
        until=until,
    )
    return await read_events(caller, backend, query)


@post(
    "/events",
    guards=[requires("events:publish")],
    status_code=202,
    tags=["events"],
    summary="Publish an external event",
)
async def publish_event(
    request: Request[Any, Any, Any],
    backend: NamedDependency[Backend],
    data: JSONBody[PublishEvent],
    idempotency_key: IdempotencyKey = None,
) -> Published:
    """Record an ``event.received`` and queue a run of every event task it matches (and of
    every condition task whose condition it turns true); a repeated idempotency key returns
    the first answer and fires nothing (the key is the body's ``idempotency_key``, else the
    header)."""
    caller = caller_of(request, idempotency_key=idempotency_key)
    return await ops.publish_event(caller, backend, data)
