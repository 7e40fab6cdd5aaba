"""Publishing external events: record one and queue a run of every task it fires."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from domain.envelope import EventMeta
from services.application.context import (
    IDEMPOTENCY_KEY_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    Backend,
    Caller,
)
from services.application.triggers import Publication, publish_external


class PublishEvent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An external event to record."""

    topic: Annotated[
        str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")
    ]
    payload: dict[str, Any]
    idempotency_key: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=1, max_length=IDEMPOTENCY_KEY_MAX, pattern=IDEMPOTENCY_KEY_PATTERN
            ),
        ]
        | None
    ) = None
    # With an offset, as an ingest entry's must have (an instant without one means nothing
    # here: an event has no zone to read it in).
    occurred_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class Published(msgspec.Struct, frozen=True):
    """Where a published event landed, the tasks it fired (a run each), and the waiting runs
    (``orchestrator.wait_for_event``) it resumed."""

    id: str
    position: int
    triggered_tasks: list[str]
    resumed_runs: list[str] = msgspec.field(default_factory=list)


async def publish_event(caller: Caller, backend: Backend, data: PublishEvent) -> Published:
    """Record an ``event.received`` and queue the runs it fires; a repeated idempotency key
    returns the first answer and fires nothing."""
    meta = EventMeta(
        actor=caller.principal.actor,
        correlation_id=caller.correlation_id,
        idempotency_key=data.idempotency_key or caller.idempotency_key,
    )
    publication = Publication(data.topic, data.payload, meta, data.occurred_at)
    async with backend.pool.acquire() as conn, conn.transaction():
        result = await publish_external(conn, backend.projections, publication)
    if not result.replayed:
        await backend.announce([*result.run_ids, *result.resumed_runs])
    return Published(
        str(result.event_id), result.position, result.triggered_tasks, result.resumed_runs
    )
