"""Stored events with their position, metadata and the codec that reads them back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from domain.events import Event, event_type


class EventMeta(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Who caused an event and in answer to what; stored beside every event."""

    actor: str
    correlation_id: str
    causation_id: str | None = None
    idempotency_key: str | None = None
    # The W3C trace context of the work that appended the event (only when tracing is on),
    # so whatever the event causes later, in any process, continues the same trace.
    traceparent: str | None = None
    tracestate: str | None = None


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """An event as stored: ``position`` is its place in the global order."""

    position: int
    stream: str
    version: int
    event: Event
    meta: EventMeta
    recorded_at: datetime

    @property
    def type(self) -> str:
        """The event's type tag."""
        return event_type(self.event)


class EventDecodeError(ValueError):
    """A stored or received event could not be read: unknown type or malformed data."""


_event_decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
_meta_decoder = msgspec.json.Decoder(EventMeta)
_encoder = msgspec.json.Encoder()


def encode_event(event: Event) -> str:
    """JSON text of an event, including its ``type`` tag."""
    return _encoder.encode(event).decode()


def encode_meta(meta: EventMeta) -> str:
    """JSON text of an event's metadata."""
    return _encoder.encode(meta).decode()


def decode_event(data: str | bytes, *, where: str = "event") -> Event:
    """Read an event from JSON; an unknown type or bad payload raises EventDecodeError."""
    try:
        return _event_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise EventDecodeError(f"{where}: {exc}") from exc


def decode_meta(data: str | bytes, *, where: str = "event") -> EventMeta:
    """Read event metadata from JSON."""
    try:
        return _meta_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise EventDecodeError(f"{where} meta: {exc}") from exc


def envelope_from_row(row: Mapping[str, Any]) -> Envelope:
    """An event row (data and meta as JSON text) read back into an Envelope."""
    where = f"event at position {row['position']}"
    return Envelope(
        position=row["position"],
        stream=row["stream"],
        version=row["version"],
        event=decode_event(row["data"], where=where),
        meta=decode_meta(row["meta"], where=where),
        recorded_at=row["recorded_at"],
    )
