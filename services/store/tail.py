"""Follow the event log: catch up from a cursor, then stay live on LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from projections.base import Connection
from services.store.events import NOTIFY_CHANNEL, StoredEvent
from services.store.order import START, Cursor
from services.store.read import read_page

# Appenders notify at most once per services.store.events.NOTIFY_EVERY per process, and an
# event held back by an older open transaction is announced by nobody when that one ends:
# so a follower also looks again this often while it waits.
POLL_SECONDS = 0.1


async def follow_stored(
    conn: Connection,
    *,
    after: Cursor = START,
    batch: int = 500,
    idle_seconds: float = 5.0,
    poll_seconds: float = POLL_SECONDS,
) -> AsyncGenerator[list[StoredEvent]]:
    """Batches of events as stored (after ``after``, in the log's order), forever.

    An empty batch means nothing arrived for ``idle_seconds``: a chance for housekeeping.
    ``conn`` holds the LISTEN while the generator runs; close it (``contextlib.aclosing``) to
    release it.
    """
    woken = asyncio.Event()

    def wake(*_: object) -> None:
        woken.set()

    await conn.add_listener(NOTIFY_CHANNEL, wake)
    loop = asyncio.get_running_loop()
    try:
        idle_since = loop.time()
        while True:
            # Clear before reading: a notify that arrives during the read re-arms the wait.
            woken.clear()
            events = (await read_page(conn, after=after, limit=batch)).events
            if events:
                after = events[-1].order
                idle_since = loop.time()
                yield events
                if len(events) == batch:
                    continue
            elif loop.time() - idle_since >= idle_seconds:
                idle_since = loop.time()
                yield []
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that arrives as the wait ends, and the follower would never stop.
            try:
                async with asyncio.timeout(min(poll_seconds, idle_seconds)):
                    await woken.wait()
            except TimeoutError:
                pass
    finally:
        await conn.remove_listener(NOTIFY_CHANNEL, wake)
