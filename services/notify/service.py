"""The notifier process: read the events stream in its own consumer group and deliver the
chosen events to agents' webhooks, each delivery on its own schedule.

An entry is acknowledged only once its delivery is over (delivered, failed, or not wanted),
so a notifier that dies leaves it pending, and another notifier reclaims it (XAUTOCLAIM)
once it has been idle for ``reclaim_idle_seconds``; a live notifier keeps its own pending
entries fresh so they are not taken while it is still retrying them. Every delivery is a task
of its own: a receiver that is slow or down only ever holds its own slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from typing import Any

import asyncpg
import redis.asyncio as redis
import structlog
from redis.exceptions import RedisError, ResponseError

from domain.webhooks import (
    DEFAULT_NOTIFY_EVENTS,
    wants,
)
from projections.base import ProjectionSet
from services.channels.events import StreamWriter
from services.notify.config import NOTIFIER_GROUP, NotifierConfig
from services.notify.delivery import Deliverer
from services.notify.recipients import Recipient, recipient_of
from services.notify.sender import WebhookSender, notification_body, webhook_client
from services.store.order import START, Cursor
from services.store.pool import open_pool

log = structlog.get_logger(__name__)
__all__ = ["NOTIFIER_GROUP", "Notifier", "NotifierConfig", "run_notifier"]

# Which event types any agent wants; cached briefly so most entries cost no query at all.
_WANTED_TYPES = """
SELECT DISTINCT unnest(coalesce(notify_events, $1::text[])) AS type
FROM agent WHERE webhook_url IS NOT NULL
"""
WANTED_CACHE_SECONDS = 2.0


def consumer_name() -> str:
    """Unique per process, as consumer names must be."""
    return f"notifier-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Notifier:
    """Delivers chosen events to webhooks until stopped."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: redis.Redis,
        key: bytes,
        projections: ProjectionSet,
        config: NotifierConfig,
    ) -> None:
        self.pool, self.client, self.key = pool, client, key
        self.projections, self.config = projections, config
        self.consumer = consumer_name()
        self.in_flight: dict[bytes, asyncio.Task[None]] = {}
        self._room = asyncio.Event()
        self._wanted: tuple[float, frozenset[str]] = (0.0, frozenset())
        self._last_read = START  # the newest entry read, to resume after a Redis reset
        self.deliverer: Deliverer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Read and deliver until stopped, reconnecting with capped backoff while Redis is away;
        deliveries still running at the end are left pending for a later notifier."""
        client = webhook_client(self.config.timeout_seconds, self.config.outbound_allow)
        async with client as http:
            sender = WebhookSender(http, self.key)
            self.deliverer = Deliverer(
                pool=self.pool, projections=self.projections, sender=sender, config=self.config
            )
            try:
                await self._read_until(stop)
            finally:
                await _cancel_all(list(self.in_flight.values()))

    async def _read_until(self, stop: asyncio.Event) -> None:
        delay = 0.1
        while not stop.is_set():
            try:
                await self._ensure_group()
                delay = 0.1
                await self._listen(stop)
            except (RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("notifier interrupted; retrying", reason=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 5.0)

    async def _ensure_group(self) -> None:
        """Create the group if it is missing: at first where the config says ("$" pinned to
        the stream's current top), later (Redis lost the stream and the relay refills it)
        right after the last entry read, so nothing read is read again and nothing older
        than the notifier's start is announced."""
        created_at = self._last_read
        if created_at == START and self.config.start_id == "$":
            created_at = await StreamWriter(self.client, self.config.stream).top()
        start = created_at.entry_id if created_at != START else self.config.start_id
        try:
            await self.client.xgroup_create(
                self.config.stream, self.config.group, id=start, mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return
        self._last_read = max(self._last_read, created_at)

    async def _listen(self, stop: asyncio.Event) -> None:
        last_reclaim = 0.0
        while not stop.is_set():
            if time.monotonic() - last_reclaim > self.config.reclaim_idle_seconds / 3:
                await self._keep_mine()
                await self._reclaim()
                last_reclaim = time.monotonic()
            room = self.config.max_in_flight - len(self.in_flight)
            if room <= 0:
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), self.config.block_ms / 1000)
                continue
            reply: Any = await self.client.xreadgroup(  # redis-py types the reply loosely
                self.config.group,
                self.consumer,
                {self.config.stream: ">"},
                count=min(room, 100),
                block=self.config.block_ms,
            )
            for _, entries in reply or ():
                for entry_id, fields in entries:
                    await self._accept(entry_id, fields)

    async def _keep_mine(self) -> None:
        """Reset the idle time of entries this notifier still works on, so no one reclaims
        them while a retry waits."""
        ids: list[Any] = list(self.in_flight)
        for start in range(0, len(ids), 500):
            await self.client.xclaim(
                self.config.stream,
                self.config.group,
                self.consumer,
                min_idle_time=0,
                message_ids=ids[start : start + 500],
                justid=True,
            )

    async def _reclaim(self) -> None:
        """Take over entries that dead notifiers read and never acknowledged."""
        idle_ms = int(self.config.reclaim_idle_seconds * 1000)
        start: Any = "0-0"
        while True:
            reply: Any = await self.client.xautoclaim(
                self.config.stream,
                self.config.group,
                self.consumer,
                idle_ms,
                start_id=start,
                count=100,
            )
            start, claimed = reply[0], reply[1]
            for entry_id, fields in claimed:
                await self._accept(entry_id, fields)
            if start in (b"0-0", "0-0"):
                return

    async def _accept(self, entry_id: bytes, fields: dict[bytes, bytes] | None) -> None:
        """Start delivering an entry, or acknowledge it at once if no one wants it."""
        if entry_id in self.in_flight:
            return
        self._last_read = max(self._last_read, Cursor.from_entry_id(entry_id))
        recipient = await self._recipient(entry_id, fields) if fields else None
        if recipient is None or fields is None:
            await self._ack(entry_id)
            return
        task = asyncio.create_task(self._deliver(entry_id, recipient, fields))
        self.in_flight[entry_id] = task
        task.add_done_callback(lambda _: self._finished(entry_id))

    def _finished(self, entry_id: bytes) -> None:
        self.in_flight.pop(entry_id, None)
        self._room.set()

    async def _recipient(self, entry_id: bytes, fields: dict[bytes, bytes]) -> Recipient | None:
        event_type = fields.get(b"type", b"").decode(errors="replace")
        if event_type not in await self._wanted_types():
            return None
        try:
            data, meta = json.loads(fields[b"data"]), json.loads(fields[b"meta"])
            notification_body("-", fields)  # every field a delivery needs is there
        except (KeyError, ValueError) as exc:
            log.warning("malformed entry skipped", entry_id=entry_id.decode(), reason=repr(exc))
            return None
        if not isinstance(data, dict) or not isinstance(meta, dict):
            return None
        async with self.pool.acquire() as conn:
            recipient = await recipient_of(conn, data)
        if recipient is None or not wants(event_type, recipient.notify_events):
            return None
        return recipient

    async def _wanted_types(self) -> frozenset[str]:
        at, types = self._wanted
        if time.monotonic() - at > WANTED_CACHE_SECONDS:
            rows = await self.pool.fetch(_WANTED_TYPES, sorted(DEFAULT_NOTIFY_EVENTS))
            types = frozenset(row["type"] for row in rows)
            self._wanted = (time.monotonic(), types)
        return types

    async def _deliver(
        self, entry_id: bytes, recipient: Recipient, fields: dict[bytes, bytes]
    ) -> None:
        """Deliver, then acknowledge; an interrupted delivery stays pending for reclaiming."""
        try:
            assert self.deliverer is not None
            await self.deliverer.deliver(recipient, fields)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning(
                "webhook delivery interrupted", agent_id=recipient.agent_id, reason=str(exc)
            )
            return
        except Exception:
            log.exception("webhook delivery failed unexpectedly", agent_id=recipient.agent_id)
            return
        await self._ack(entry_id)

    async def _ack(self, entry_id: bytes) -> None:
        # If Redis is away the entry stays pending; whoever reclaims it finds the record.
        with contextlib.suppress(RedisError, OSError):
            await self.client.xack(self.config.stream, self.config.group, entry_id)


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Stop deliveries in flight (their entries stay pending), without waiting forever on one
    that does not end when cancelled."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=5.0)


async def run_notifier(
    database_url: str,
    redis_url: str,
    key: bytes,
    stop: asyncio.Event,
    config: NotifierConfig | None = None,
) -> None:
    """The notifier as a supervised component with its own small pool."""
    from projections.registry import inline_projections

    client = redis.Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=2.0)
    try:
        async with open_pool(database_url, size=6, warm=1) as pool:
            notifier = Notifier(pool, client, key, inline_projections(), config or NotifierConfig())
            await notifier.run(stop)
    finally:
        await client.aclose()
