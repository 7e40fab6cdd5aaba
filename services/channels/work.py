"""Wake-ups through Redis: `ordinaut:work` entries tell one worker that work may be ready.

An entry is only a hint; Postgres (the lease) decides who runs what. So a lost, repeated or
late entry never runs anything twice or skips it: workers also poll `due_work` at a bounded
interval, which is all they do while Redis is away. We use redis-py rather than FastStream
here because the wake-ups need an explicit XAUTOCLAIM of dead consumers' entries and a
reconnect loop that coexists with polling; FastStream's Redis subscriber offers claiming
only on Redis >= 8.4, and neither retry caps nor reclaiming on older servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as redis
import structlog
from redis.exceptions import RedisError, ResponseError

WORK_STREAM = "ordinaut:work"
WORK_GROUP = "workers"
# Entries are wake-ups, not the work itself: a short stream is plenty.
STREAM_MAXLEN = 10_000
# A consumer that has not acknowledged an entry for this long is presumed dead.
RECLAIM_IDLE_MS = 30_000
# A consumer idle this long with nothing pending is gone (live ones block-read every second).
DEAD_CONSUMER_IDLE_MS = 600_000
# After Redis fails, announcers stay quiet this long instead of waiting on it per command.
QUIET_AFTER_FAILURE_SECONDS = 2.0
# The most entries one announcement posts. An entry wakes one worker, and a woken worker leases
# as many ready runs as it has free slots and leases again while it fills them: more entries
# than there are idle workers wake nobody more. When the timer fires a batch of 1,000 runs,
# posting (and parsing the replies of) 1,000 XADDs cost the timer a quarter of its CPU.
WAKE_ENTRIES_MAX = 256

log = structlog.get_logger(__name__)


class Announcer:
    """Posts wake-ups after a commit; never fails or delays the command when Redis is away."""

    def __init__(self, client: redis.Redis, stream: str = WORK_STREAM) -> None:
        self.client, self.stream = client, stream
        self._quiet_until = 0.0

    async def announce(self, run_ids: Iterable[str]) -> None:
        """One entry per run that became ready, at most WAKE_ENTRIES_MAX (best effort)."""
        ids = list(itertools.islice(run_ids, WAKE_ENTRIES_MAX))
        if not ids or time.monotonic() < self._quiet_until:
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for run_id in ids:
                    pipe.xadd(
                        self.stream, {"run_id": run_id}, maxlen=STREAM_MAXLEN, approximate=True
                    )
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._quiet_until = time.monotonic() + QUIET_AFTER_FAILURE_SECONDS
            log.warning("work announcement skipped", reason=str(exc))


class WakeListener:
    """Reads `ordinaut:work` in the worker group and calls ``wake`` for each entry.

    Entries are acknowledged as soon as they are read: the hint has done its job once a
    worker woke up, and the lease (not the entry) guards the work. Entries a dead consumer
    read and never acknowledged are reclaimed and treated the same way, and dead consumers
    are removed from the group so it does not collect one per worker that ever ran.
    """

    def __init__(
        self,
        client: redis.Redis,
        consumer: str,
        wake: Callable[[], None],
        *,
        stream: str = WORK_STREAM,
        dead_after_ms: int = DEAD_CONSUMER_IDLE_MS,
    ) -> None:
        self.client, self.consumer, self.wake = client, consumer, wake
        self.stream, self.dead_after_ms = stream, dead_after_ms
        self.connected = False

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until stopped, reconnecting with backoff while Redis is away."""
        delay = 0.2
        while not stop.is_set():
            try:
                await self._ensure_group()
                self.connected = True
                delay = 0.2
                await self._listen(stop)
                await self._leave()
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("work stream unavailable; polling due_work", reason=str(exc))
                self.connected = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 5.0)

    async def _ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(self.stream, WORK_GROUP, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _listen(self, stop: asyncio.Event) -> None:
        last_claim = 0.0
        while not stop.is_set():
            if time.monotonic() - last_claim > RECLAIM_IDLE_MS / 1000:
                await self._reclaim()
                await self._forget_dead_consumers()
                last_claim = time.monotonic()
            answer: Any = await self.client.xreadgroup(  # redis-py types the reply loosely
                WORK_GROUP, self.consumer, {self.stream: ">"}, count=100, block=1000
            )
            for _, entries in answer or ():
                ids = [entry_id for entry_id, _ in entries]
                if ids:
                    # Wake first: the lease need not wait for Redis to answer the XACK.
                    self.wake()
                    await self.client.xack(self.stream, WORK_GROUP, *ids)

    async def _leave(self) -> None:
        """On a clean stop: everything read was acknowledged, so the consumer can go."""
        await self.client.xgroup_delconsumer(self.stream, WORK_GROUP, self.consumer)

    async def _forget_dead_consumers(self) -> None:
        consumers: Any = await self.client.xinfo_consumers(self.stream, WORK_GROUP)
        for consumer in consumers:
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else name
            if (
                name != self.consumer
                and consumer["pending"] == 0
                and consumer["idle"] >= self.dead_after_ms
            ):
                await self.client.xgroup_delconsumer(self.stream, WORK_GROUP, name)

    async def _reclaim(self) -> None:
        """Take over entries that dead consumers read but never acknowledged."""
        start = "0-0"
        while True:
            reply = await self.client.xautoclaim(
                self.stream, WORK_GROUP, self.consumer, RECLAIM_IDLE_MS, start_id=start, count=100
            )
            start, claimed = reply[0], reply[1]
            ids = [entry_id for entry_id, _ in claimed]
            if ids:
                await self.client.xack(self.stream, WORK_GROUP, *ids)
                self.wake()
            if start in (b"0-0", "0-0"):
                return
