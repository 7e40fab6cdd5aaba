"""Follow the event log: catch up from a position, then stay live on LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

from domain.envelope import Envelope
from projections.base import Connection
from services.store.events import NOTIFY_CHANNEL, StoredEvent, read_all, read_stored

# NOTIFY wakes the tailer at once; this is only a safety net should a notification be lost
# (e.g. the listening connection was replaced), so it can be long.
_IDLE_RECHECK_SECONDS = 5.0


@contextlib.asynccontextmanager
async def tail(
    conn: Connection, *, after: int = 0, batch: int = 500
) -> AsyncIterator[AsyncIterator[Envelope]]:
    """Follow the log: ``async with tail(conn) as events: async for e in events: ...``.

    Yields every event with ``position > after``, in order, forever. ``conn`` is dedicated to
    the tailer while the block runs (it holds the LISTEN, released on exit).
    """
    async with contextlib.aclosing(_follow(conn, after, batch)) as events:
        yield events


async def _follow(conn: Connection, after: int, batch: int) -> AsyncGenerator[Envelope]:
    woken = asyncio.Event()

    def wake(*_: object) -> None:
        woken.set()

    await conn.add_listener(NOTIFY_CHANNEL, wake)
    try:
        while True:
            # Clear before reading: a notify that arrives during the read re-arms the wait.
            woken.clear()
            envelopes = await read_all(conn, after=after, limit=batch)
            for envelope in envelopes:
                yield envelope
                after = envelope.position
            if len(envelopes) < batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), _IDLE_RECHECK_SECONDS)
    finally:
        await conn.remove_listener(NOTIFY_CHANNEL, wake)


async def follow_stored(
    conn: Connection, *, after: int = 0, batch: int = 500, idle_seconds: float = 5.0
) -> AsyncGenerator[list[StoredEvent]]:
    """Batches of events as stored (``position > after``, in order), forever.

    An empty batch means nothing arrived for ``idle_seconds``: a chance for housekeeping.
    ``conn`` holds the LISTEN while the generator runs; close it (``aclosing``) to release it.
    """
    woken = asyncio.Event()

    def wake(*_: object) -> None:
        woken.set()

    await conn.add_listener(NOTIFY_CHANNEL, wake)
    try:
        while True:
            woken.clear()
            events = await read_stored(conn, after=after, limit=batch)
            if events:
                after = events[-1].position
                yield events
                if len(events) == batch:
                    continue
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that arrives as the wait ends, and the follower would never stop.
            try:
                async with asyncio.timeout(idle_seconds):
                    await woken.wait()
            except TimeoutError:
                yield []
    finally:
        await conn.remove_listener(NOTIFY_CHANNEL, wake)
