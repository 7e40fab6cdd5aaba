"""The event log over HTTP: read it forward by position, and publish external events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, QueryParameter

from domain.envelope import EventMeta
from services.api.auth import principal_of, requires
from services.store.events import StoredEvent, read_stored
from services.store.publish import Publication, publish_external


class EventPage(msgspec.Struct, frozen=True):
    """A page of the log; pass ``next`` as ``after`` to continue (null when caught up)."""

    items: list[StoredEvent]
    next: int | None


class PublishEvent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An external event to record."""

    topic: Annotated[
        str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")
    ]
    payload: dict[str, Any]
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    occurred_at: datetime | None = None


class Published(msgspec.Struct, frozen=True):
    """Where a published event landed, and the tasks it fired (a run each)."""

    id: str
    position: int
    triggered_tasks: list[str]


@get("/events", guards=[requires("events:read")], tags=["events"], summary="Read the log forward")
async def list_events(
    state: State,
    after: Annotated[
        int, QueryParameter(ge=0, description="Return events after this position")
    ] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=1000, description="At most this many")] = 100,
) -> EventPage:
    """Events with ``position > after`` in position order."""
    async with state.pool.acquire() as conn:
        items = await read_stored(conn, after=after, limit=limit)
    return EventPage(items, items[-1].position if len(items) == limit else None)


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
    key = data.idempotency_key or request.headers.get("idempotency-key")
    meta = EventMeta(
        actor=principal_of(request).actor,
        correlation_id=request.scope["state"]["correlation_id"],
        idempotency_key=key,
    )
    publication = Publication(data.topic, data.payload, meta, data.occurred_at)
    async with state.pool.acquire() as conn, conn.transaction():
        result = await publish_external(conn, state.projections, publication)
    if not result.replayed:
        await state.announcer.announce(result.run_ids)
    return Published(str(result.event_id), result.position, result.triggered_tasks)
