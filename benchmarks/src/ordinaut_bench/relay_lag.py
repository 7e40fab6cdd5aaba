"""Watching an events stream the relay fills: when each event became visible there.

Relay lag is the time from an event's commit (its ``recorded_at``, on the database's clock,
taken just before commit) to the moment a reader of the stream receives it; end-to-end adds
the time from the ingest entry's XADD (the millisecond in its entry id, which the event's
``correlation_id`` names). Both clocks are this machine's.

The reader stops when asked (``Seen.stop``), between reads, rather than by cancellation:
redis-py can swallow a cancellation that lands during a blocking XREAD, and the loop then
reads on forever while whoever cancelled it waits for it to end (the `bench ingest` hang).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis.asyncio as redis

from services.store.order import START, Cursor


@dataclass
class Seen:
    """Lags of the ``event.received`` entries read so far, in milliseconds."""

    relay_ms: list[float] = field(default_factory=list)
    end_to_end_ms: list[float] = field(default_factory=list)
    top: Cursor = START
    stop: asyncio.Event = field(default_factory=asyncio.Event)


class WatchError(RuntimeError):
    """The reader of the events stream failed or would not stop."""


# A blocking read returns after this long with nothing new, so a stop is noticed this soon.
_BLOCK_MS = 200
# How long the reader gets to notice a stop before the bench gives up on it.
STOP_SECONDS = 10.0


async def watch(client: redis.Redis, stream: str, after: Cursor, seen: Seen) -> None:
    """Read the stream from position ``after`` until ``seen.stop`` is set, recording each
    event's lags."""
    last: bytes | str = after.entry_id
    while not seen.stop.is_set():
        reply: Any = await client.xread({stream: last}, count=1000, block=_BLOCK_MS)
        arrived = time.time()
        for _, entries in reply or ():
            for entry_id, fields in entries:
                last, seen.top = entry_id, Cursor.from_entry_id(entry_id)
                if fields[b"type"] == b"event.received":
                    _record(seen, fields, arrived)


def _record(seen: Seen, fields: dict[bytes, bytes], arrived: float) -> None:
    recorded = datetime.fromisoformat(fields[b"recorded_at"].decode()).timestamp()
    seen.relay_ms.append((arrived - recorded) * 1000)
    correlation = json.loads(fields[b"meta"]).get("correlation_id", "")
    entry_ms = correlation.rsplit(":", 1)[-1].split("-", 1)[0]
    if entry_ms.isdigit():
        seen.end_to_end_ms.append(arrived * 1000 - int(entry_ms))


class Watcher:
    """A running ``watch``: what it has seen, and whether it is still reading."""

    def __init__(self, client: redis.Redis, stream: str, after: Cursor) -> None:
        self.stream, self.seen = stream, Seen(top=after)
        self.task = asyncio.create_task(watch(client, stream, after, self.seen))

    def check(self) -> None:
        """Raise at once if the reader ended (it only ends when told to)."""
        if self.task.done():
            error = None if self.task.cancelled() else self.task.exception()
            raise WatchError(f"the reader of {self.stream} stopped early: {error!r}")

    async def stop(self, seconds: float = STOP_SECONDS) -> None:
        """Ask the reader to stop and wait (bounded) until it has."""
        self.seen.stop.set()
        done, _ = await asyncio.wait([self.task], timeout=seconds)
        if not done:
            self.task.cancel()  # last resort; the error below says what happened
            raise WatchError(f"the reader of {self.stream} did not stop within {seconds:g} s")
        if not self.task.cancelled() and (error := self.task.exception()) is not None:
            raise WatchError(f"the reader of {self.stream} failed: {error!r}") from error


@contextlib.asynccontextmanager
async def watching(client: redis.Redis, stream: str, after: Cursor) -> AsyncIterator[Watcher]:
    """``watch`` in the background for the duration of the block; yields its Watcher."""
    watcher = Watcher(client, stream, after)
    try:
        yield watcher
    finally:
        await watcher.stop()
