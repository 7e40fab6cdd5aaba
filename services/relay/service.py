"""The relay process: follow the log and publish it to the events stream, exactly once.

Order and exactly-once come from the stream ids (see services/channels/events.py); the
Postgres checkpoint only records progress. Redis being away never touches commands: the relay
backs off, retries, and on reconnecting resumes from what the stream really holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as redis
import structlog
from redis.exceptions import RedisError

from services.channels.events import EVENTS_STREAM, StreamWriter
from services.runtime.metrics import RELAY_LAG
from services.runtime.settings import DEFAULTS
from services.runtime.tracing import traced
from services.store.events import StoredEvent
from services.store.order import START, Cursor
from services.store.pool import SESSION_SETTINGS
from services.store.tail import follow_stored

log = structlog.get_logger(__name__)

_SAVE = """
INSERT INTO relay_checkpoint (name, txid, position, updated_at) VALUES ($1, $2, $3, now())
ON CONFLICT (name) DO UPDATE
SET txid = excluded.txid, position = excluded.position, updated_at = now()
"""
# recorded_at only roughly follows the log's order (appends run concurrently): trimming by
# age is approximate anyway, so the first event in order recorded after the cut-off will do.
_FIRST_SINCE = """
SELECT txid, position FROM events WHERE recorded_at >= clock_timestamp() - $1::interval
ORDER BY txid, position LIMIT 1
"""
_HAS = "SELECT EXISTS (SELECT FROM events WHERE txid = $1::xid8 AND position = $2)"
_LAST = "SELECT txid, position FROM events ORDER BY txid DESC, position DESC LIMIT 1"
# Session-level: held while this relay's connection lives. The first key is any fixed number.
_LEAD = "SELECT pg_advisory_lock(1919250540, hashtext($1))"
_FAILURES = (RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(frozen=True)
class RelayConfig:
    """How the relay publishes. ``maxlen``/``max_age_seconds``: approximate trimming (None =
    keep everything); Postgres stays the archive for replay beyond what the stream keeps."""

    stream: str = EVENTS_STREAM
    batch: int = 500
    maxlen: int | None = DEFAULTS.relay_maxlen or None
    max_age_seconds: float | None = DEFAULTS.relay_max_age_seconds or None
    # With nothing new for this long the relay re-checks the stream (a flush is noticed).
    idle_seconds: float = 5.0
    backoff_max_seconds: float = 5.0
    # Trimming by age costs a query, so it runs at most this often.
    trim_every_seconds: float = 60.0


class _Resync(Exception):
    """The stream's top is not what this relay last wrote: start again from the real top."""


class ForeignStream(Exception):
    """The stream holds positions this log does not have: it was filled from another database.

    Nothing is published (that would mix two logs); the relay keeps checking, so deleting the
    stream (or pointing the relay at another one) lets it start.
    """


class Relay:
    """Publishes every stored event to ``config.stream`` until stopped."""

    def __init__(self, database_url: str, client: redis.Redis, config: RelayConfig) -> None:
        self.database_url, self.config = database_url, config
        self.writer = StreamWriter(client, config.stream)
        self.connected = False
        self._trimmed_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop``; outages are retried with capped exponential backoff."""
        delay = 0.1
        while not stop.is_set():
            try:
                await _until_stopped(self._session(), stop)
            except (*_FAILURES, ForeignStream) as exc:
                if self.connected or isinstance(exc, ForeignStream):
                    reason = str(exc) or type(exc).__name__
                    log.warning("relay interrupted; retrying", reason=reason)
                self.connected = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self.config.backoff_max_seconds)
            else:
                delay = 0.1

    async def _session(self) -> None:
        conn = await asyncpg.connect(self.database_url, server_settings=SESSION_SETTINGS)
        try:
            # One relay per stream publishes; others wait here as standbys and take over when
            # its connection ends (the lock goes with it). The Lua check stays the guard.
            await conn.execute(_LEAD, self.config.stream)
            while True:
                top = await self._resume_point(conn)
                self.connected = True
                try:
                    await self._follow(conn, top)
                except _Resync:
                    continue
        finally:
            await conn.close()

    async def _follow(self, conn: asyncpg.Connection, top: Cursor) -> None:
        batches = follow_stored(
            conn, after=top, batch=self.config.batch, idle_seconds=self.config.idle_seconds
        )
        async with contextlib.aclosing(batches):
            async for events in batches:
                if events:
                    top = await self._publish(conn, events, top)
                else:
                    await self._housekeeping(conn, top)

    async def _resume_point(self, conn: asyncpg.Connection) -> Cursor:
        """Where the stream really is; a stream behind the checkpoint lost data in Redis."""
        top = await self.writer.top()
        row = await conn.fetchrow(
            "SELECT txid, position FROM relay_checkpoint WHERE name = $1", self.config.stream
        )
        saved = Cursor(int(row["txid"]), row["position"]) if row is not None else None
        if saved is not None and top < saved:
            log.warning(
                "events stream is behind the checkpoint; re-publishing",
                stream=self.config.stream,
                stream_top=top.entry_id,
                checkpoint=saved.entry_id,
            )
        found = await conn.fetchrow(_LAST)
        last = Cursor(int(found["txid"]), found["position"]) if found is not None else START
        if top > last or (top != START and not await conn.fetchval(_HAS, top.txid, top.position)):
            raise ForeignStream(
                f"stream {self.config.stream!r} holds event {top.entry_id} but the log ends at"
                f" {last.entry_id}: it was filled from another database; delete it or relay to"
                " another stream"
            )
        await conn.execute(_SAVE, self.config.stream, top.txid, top.position)
        return top

    @traced("ordinaut.relay.batch", lambda _, __, events, *___: {"ordinaut.events": len(events)})
    async def _publish(
        self, conn: asyncpg.Connection, events: list[StoredEvent], top: Cursor
    ) -> Cursor:
        outcome = await self.writer.publish(events, top, self.config.maxlen)
        if not outcome.written:
            log.warning(
                "events stream changed behind the relay; resuming from its top",
                expected=top,
                found=outcome.top,
            )
            raise _Resync()
        now = datetime.now(UTC)
        for event in events:
            RELAY_LAG.observe(max((now - event.recorded_at).total_seconds(), 0.0))
        await conn.execute(_SAVE, self.config.stream, outcome.top.txid, outcome.top.position)
        await self._trim_by_age(conn, outcome.top)
        return outcome.top

    async def _housekeeping(self, conn: asyncpg.Connection, top: Cursor) -> None:
        """While idle: notice a stream that lost entries (say, a flush), and trim by age."""
        if await self.writer.top() != top:
            log.warning("events stream changed behind the relay; resuming from its top")
            raise _Resync()
        await self._trim_by_age(conn, top)

    async def _trim_by_age(self, conn: asyncpg.Connection, top: Cursor) -> None:
        """Entry ids are places in the log, not times: find the first one young enough."""
        age = self.config.max_age_seconds
        if age is None or time.monotonic() - self._trimmed_at < self.config.trim_every_seconds:
            return
        self._trimmed_at = time.monotonic()
        first = await conn.fetchrow(_FIRST_SINCE, timedelta(seconds=age))
        if first is None:  # nothing young enough: keep only the top, as MINID needs an id
            await self.writer.trim_before(top)
        else:
            await self.writer.trim_before(Cursor(int(first["txid"]), first["position"]))


async def _until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run ``work`` until it ends (its exception propagates) or ``stop`` is set (cancelled)."""
    task = asyncio.create_task(work)
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        # Cancel until it ends: library code may swallow one cancellation (asyncio.wait_for
        # on Python 3.11 does when the awaited thing finishes at the same moment).
        while not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=1.0)
    if not task.cancelled():
        task.result()


async def run_relay(
    database_url: str, redis_url: str, stop: asyncio.Event, config: RelayConfig | None = None
) -> None:
    """The relay as a supervised component."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=2.0)
    try:
        await Relay(database_url, client, config or RelayConfig()).run(stop)
    finally:
        await client.aclose()
