"""Follow the event log: catch up from a position, then stay live on LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from projections.base import Connection
from services.store.events import NOTIFY_CHANNEL, StoredEvent, read_stored


async def follow_stored(
    conn: Connection, *, after: int = 0, batch: int = 500, idle_seconds: float = 5.0
) -> AsyncGenerator[list[StoredEvent]]:
    """Batches of events as stored (``position > after``, in order), forever.

    An empty batch means nothing arrived for ``idle_seconds``: a chance for housekeeping (and
    a safety net should a notification be lost). ``conn`` holds the LISTEN while the generator
    runs; close it (``contextlib.aclosing``) to release it.
    """
    woken = asyncio.Event()

    def wake(*_: object) -> None:
        woken.set()

    await conn.add_listener(NOTIFY_CHANNEL, wake)
    try:
        while True:
            # Clear before reading: a notify that arrives during the read re-arms the wait.
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
