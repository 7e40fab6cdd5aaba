"""The event log over HTTP: read it by position (filtered, for audits), and publish events."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, QueryParameter

from domain.envelope import EventMeta
from services.api.auth import principal_of, requires
from services.api.problems import ApiError, FieldError
from services.store.audit import EventFilter, read_filtered
from services.store.events import StoredEvent
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
        int, QueryParameter(ge=0, description="Return events after this position")
    ] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=1000, description="At most this many")] = 100,
    before: Annotated[
        int | None, QueryParameter(ge=1, description="Only events before this position")
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
    """Matching events with ``position > after``, in position order."""
    where = EventFilter(
        stream=stream,
        types=_types(event_type),
        actor=actor,
        correlation_id=correlation_id,
        after=after,
        before=before,
        since=_aware("since", since),
        until=_aware("until", until),
    )
    async with state.pool.acquire() as conn:
        items = await read_filtered(conn, where, limit)
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
