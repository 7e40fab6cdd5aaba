"""Envelopes for the projection rules' unit tests: no database, a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.envelope import Envelope, EventMeta
from domain.events import Event

AT = datetime(2030, 1, 1, 9, tzinfo=UTC)
LATER = AT + timedelta(hours=1)


def envelope(
    stream: str,
    event: Event,
    *,
    version: int = 2,
    actor: str = "alice",
    at: datetime = AT,
    position: int = 10,
) -> Envelope:
    """``event`` as stored at ``version`` of ``stream``, recorded at ``at`` by ``actor``."""
    return Envelope(
        position=position,
        stream=stream,
        version=version,
        event=event,
        meta=EventMeta(actor=actor, correlation_id="c-1"),
        recorded_at=at,
    )
