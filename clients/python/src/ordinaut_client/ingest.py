"""Publishing events straight onto the ingest stream (`ordinaut:ingest`), without HTTP.

Needs the ``faststream`` extra (it brings redis-py). The entry's fields are what the ingest
consumer reads (services/ingest/entries.py): ``topic``, ``payload`` (a JSON object), and
optionally ``source``, ``idempotency_key``, ``occurred_at`` and ``traceparent``. Whatever the
consumer would dead-letter is refused here first, as IngestRefused with the same reason; a
refusal only the server can make (e.g. its payload size limit, if lowered) is found with
``dead_letter``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import redis.asyncio as redis

from ordinaut_client.errors import IngestRefused

INGEST_STREAM = "ordinaut:ingest"
DEAD_STREAM = "ordinaut:dead"
MAX_PAYLOAD_BYTES = 256 * 1024
_TOPIC = re.compile(r"[A-Za-z0-9_.:\-]{1,200}")
_SOURCE = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def entry_fields(
    topic: str,
    payload: dict[str, Any],
    *,
    source: str | None = None,
    idempotency_key: str | None = None,
    occurred_at: datetime | str | None = None,
    traceparent: str | None = None,
) -> dict[str, str]:
    """The fields of an ingest entry, checked as the consumer checks them."""
    if not _TOPIC.fullmatch(topic):
        raise IngestRefused("topic: must be 1-200 letters, digits or _ . : -")
    if not isinstance(payload, dict):
        raise IngestRefused(f"payload: must be a JSON object, not {type(payload).__name__}")
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    if "\\u0000" in text and _holds_nul(payload):  # "C:\\u0000" spells it too: look closer
        raise IngestRefused(
            "payload: a text in it holds a NUL character, which PostgreSQL cannot store"
        )
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise IngestRefused(f"payload: over the limit of {MAX_PAYLOAD_BYTES} bytes")
    fields = {"topic": topic, "payload": text}
    if source is not None:
        if not _SOURCE.fullmatch(source):
            raise IngestRefused("source: must be 1-100 letters, digits or _ . : -")
        fields["source"] = source
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 200:
            raise IngestRefused("idempotency_key: must be 1-200 characters")
        fields["idempotency_key"] = idempotency_key
    if occurred_at is not None:
        fields["occurred_at"] = _instant(occurred_at)
    if traceparent is not None:
        if not _TRACEPARENT.fullmatch(traceparent):
            raise IngestRefused("traceparent: not a W3C traceparent")
        fields["traceparent"] = traceparent
    for name, value in fields.items():
        if "\x00" in value:
            raise IngestRefused(f"{name}: contains a NUL character")
    return fields


def _instant(value: datetime | str) -> str:
    try:
        instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        raise IngestRefused("occurred_at: not an ISO-8601 instant") from None
    if instant.utcoffset() is None:
        raise IngestRefused("occurred_at: needs a UTC offset")
    return instant.isoformat()


async def publish_event(
    client: redis.Redis,
    topic: str,
    payload: dict[str, Any],
    *,
    source: str | None = None,
    idempotency_key: str | None = None,
    occurred_at: datetime | str | None = None,
    traceparent: str | None = None,
    stream: str = INGEST_STREAM,
) -> str:
    """Append an event to the ingest stream; returns the entry id. Recording is asynchronous:
    GET /events shows it once the consumer has read it. Without ``idempotency_key`` the entry
    id is the key, so a redelivered entry is still recorded once."""
    fields = entry_fields(
        topic,
        payload,
        source=source,
        idempotency_key=idempotency_key,
        occurred_at=occurred_at,
        traceparent=traceparent,
    )
    entry_id: Any = await client.xadd(stream, fields)  # type: ignore[arg-type]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def dead_letter(
    client: redis.Redis, entry_id: str, *, dead_stream: str = DEAD_STREAM, scan: int = 1000
) -> IngestRefused | None:
    """Why the consumer refused entry ``entry_id``, if it did (among the newest ``scan``
    dead letters); None when it is not there (recorded, or not read yet)."""
    entries: Any = await client.xrevrange(dead_stream, count=scan)
    for _, fields in entries:
        text = {_str(k): _str(v) for k, v in fields.items()}
        if text.get("source_id") == entry_id:
            return IngestRefused(text.get("reason", "unknown"))
    return None


def _str(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _holds_nul(value: Any) -> bool:
    """Whether any string in ``value`` (keys included) holds a NUL (no recursion: any depth)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending += item.keys()
            pending += item.values()
        elif isinstance(item, list):
            pending += item
    return False
