"""Recording an external event: what POST /events and the publish_event tool both do."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import msgspec

from domain.envelope import EventMeta
from domain.events import EventReceived
from projections.base import Connection, ProjectionSet
from services.store.events import StreamAppend, append_in_transaction


async def publish_external(
    conn: Connection,
    projections: ProjectionSet,
    meta: EventMeta,
    topic: str,
    payload: dict[str, Any],
    occurred_at: datetime | None = None,
    source: str = "api",
) -> tuple[str, int]:
    """Append an ``event.received`` (in the caller's transaction); its id and position.

    With an idempotency key in ``meta``, a repeat returns the first event's id and position.
    """
    event = EventReceived(
        event_id=str(uuid.uuid4()),
        topic=topic,
        payload=payload,
        occurred_at=occurred_at,
        source=source,
    )
    fingerprint = hashlib.sha256(msgspec.json.encode([topic, payload, occurred_at])).hexdigest()
    result = await append_in_transaction(
        conn, [StreamAppend(f"topic-{topic}", [event])], meta, projections,
        fingerprint=fingerprint,
    )  # fmt: skip
    if not result.replayed:
        return event.event_id, result.first_position
    event_id = await conn.fetchval(
        "SELECT data->>'event_id' FROM events WHERE position = $1", result.first_position
    )
    return str(event_id), result.first_position
