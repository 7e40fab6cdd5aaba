"""Replaying stored events: to a Redis stream (same entry format and ids as the relay's) or
to JSON lines, in the log's order, as a snapshot of the log when the replay starts."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import IO

import msgspec
import redis.asyncio as redis

from projections.base import Connection
from services.channels.events import StreamWriter
from services.store.audit import EventFilter, count_filtered, current_horizon, read_filtered
from services.store.events import StoredEvent
from services.store.order import Cursor
from services.store.read import settle

Sink = Callable[[list[StoredEvent]], Awaitable[None]]
Progress = Callable[[int, int], None]


class ReplayError(Exception):
    """The replay cannot go on; the message says why in one line."""


async def replay_events(
    conn: Connection,
    where: EventFilter,
    sink: Sink,
    *,
    batch: int = 1000,
    progress: Progress | None = None,
) -> int:
    """Send every matching event to ``sink`` in batches; returns how many were sent.

    Events appended after the replay started are left out, so the replay has an end.
    """
    # Transactions below today's horizon have all ended: that part of the log is final. Those
    # begun before the replay are waited for first (briefly), so it holds every event written
    # before it was asked for.
    await settle(conn)
    where = dataclasses.replace(where, horizon=await current_horizon(conn))
    total, done = await count_filtered(conn, where), 0
    while True:
        events = await read_filtered(conn, where, batch)
        if not events:
            return done
        await sink(events)
        done += len(events)
        where = dataclasses.replace(where, after=events[-1].order)
        if progress is not None:
            progress(done, total)


class RedisSink:
    """Appends to a stream under the relay's ids (services/store/order.py).

    Events the stream already holds are skipped, so an interrupted replay can simply be
    run again; a stream that changes under the replay stops it.
    """

    def __init__(self, client: redis.Redis, stream: str) -> None:
        self.writer = StreamWriter(client, stream)
        self.top: Cursor | None = None

    async def __call__(self, events: list[StoredEvent]) -> None:
        if self.top is None:
            self.top = await self.writer.top()
        fresh = [event for event in events if event.order > self.top]
        if not fresh:
            return
        outcome = await self.writer.publish(fresh, self.top, maxlen=None)
        if not outcome.written:
            raise ReplayError(
                f"stream {self.writer.stream!r} changed during the replay"
                f" (now at {outcome.top.entry_id})"
            )
        self.top = outcome.top


class JsonlSink:
    """Writes one JSON object per line, as ``ordinaut events tail`` prints them."""

    def __init__(self, output: IO[bytes]) -> None:
        self.output = output
        self._encoder = msgspec.json.Encoder()

    async def __call__(self, events: list[StoredEvent]) -> None:
        self.output.write(b"".join(self._encoder.encode(e) + b"\n" for e in events))
        self.output.flush()
