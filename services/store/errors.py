"""Errors the event store raises to its callers."""

from __future__ import annotations


class StoreError(Exception):
    """Base of event store errors."""


class VersionConflict(StoreError):
    """The stream moved on since the caller read it; re-read and retry the command."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream!r} is at version {actual}, expected {expected}")
        self.stream = stream
        self.expected = expected
        self.actual = actual


class IdempotencyKeyReused(StoreError):
    """The same idempotency key was sent with a different command."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different request")
        self.key = key


class UnstorableText(StoreError):
    """Text with a NUL character (\\u0000), which PostgreSQL cannot store."""

    def __init__(self) -> None:
        super().__init__("text may not contain the NUL character (\\u0000)")


class StreamBusy(StoreError):
    """Another append held one of the streams longer than the store's lock timeout; retry."""

    def __init__(self, streams: list[str]) -> None:
        shown = ", ".join(repr(s) for s in streams[:3])
        super().__init__(f"stream {shown} is busy with another append; retry")
        self.streams = streams


class UnknownCursor(StoreError):
    """A cursor that names no place in this log."""
