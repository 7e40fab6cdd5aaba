"""Reading one `ordinaut:ingest` entry: a valid event to record, or the reason it is refused."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from domain.envelope import EventMeta
from services.application.triggers import Publication

TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
TOPIC = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")
SOURCE = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
MAX_KEY_LENGTH = 200


class Refused(Exception):
    """The entry cannot become an event; ``reason`` says why (it goes to the dead stream)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Entry:
    """A stream entry as read: its id and fields (bytes, as Redis gives them)."""

    id: str
    fields: dict[bytes, bytes]

    def text(self) -> dict[str, str]:
        """The fields as text (undecodable bytes replaced), for the dead stream."""
        return {
            k.decode(errors="replace"): v.decode(errors="replace") for k, v in self.fields.items()
        }


def read_entry(entry: Entry, stream: str, max_payload_bytes: int) -> Publication:
    """The event an entry asks to record; raises Refused naming the problem."""
    topic = _text(entry, "topic")
    if topic is None:
        raise Refused("topic: missing field")
    if not TOPIC.match(topic):
        raise Refused("topic: must be 1-200 letters, digits or _ . : -")
    payload = _payload(entry, max_payload_bytes)
    source = _text(entry, "source") or "stream"
    if not SOURCE.match(source):
        raise Refused("source: must be 1-100 letters, digits or _ . : -")
    key = _text(entry, "idempotency_key")
    if key is not None and not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise Refused(f"idempotency_key: must be 1-{MAX_KEY_LENGTH} characters")
    # Without a key of its own, the entry's id is the key: an entry delivered again (its
    # consumer died before acknowledging it) is then recorded once all the same.
    meta = EventMeta(
        actor=f"ingest:{source}",
        correlation_id=f"{stream}:{entry.id}",
        idempotency_key=key if key is not None else f"entry:{stream}:{entry.id}",
        traceparent=_traceparent(entry),  # the runs it fires continue the sender's trace
    )
    occurred = _text(entry, "occurred_at")
    return Publication(topic, payload, meta, _instant(occurred), source)


def _traceparent(entry: Entry) -> str | None:
    text = _text(entry, "traceparent")
    if text is not None and not TRACEPARENT.fullmatch(text):
        raise Refused("traceparent: not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)")
    return text


def _text(entry: Entry, name: str) -> str | None:
    raw = entry.fields.get(name.encode())
    if raw is None:
        return None
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise Refused(f"{name}: not UTF-8 text") from None
    if "\x00" in text:
        raise Refused(f"{name}: contains a NUL character")
    return text


def _payload(entry: Entry, limit: int) -> dict[str, Any]:
    raw = entry.fields.get(b"payload")
    if raw is None:
        raise Refused("payload: missing field")
    if len(raw) > limit:
        raise Refused(f"payload: {len(raw)} bytes, over the limit of {limit}")
    try:
        payload = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise Refused(f"payload: not valid JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise Refused(f"payload: must be a JSON object, not {type(payload).__name__}")
    # Only a text that spells \u0000 can hold a NUL, but "C:\\u0000" spells it too: look at
    # the decoded strings.
    if b"\\u0000" in raw and _holds_nul(payload):
        raise Refused("payload: a text in it holds a NUL character, which PostgreSQL cannot store")
    return payload


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


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise Refused("occurred_at: not an ISO-8601 instant") from None
    if instant.utcoffset() is None:
        raise Refused("occurred_at: needs a UTC offset")
    return instant
