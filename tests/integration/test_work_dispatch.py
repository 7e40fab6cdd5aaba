"""Wake-ups: one entry per ready run up to a cap; listeners keep the worker group tidy (dead
consumers go, live pending stays)."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as redis

from services.channels.work import WAKE_ENTRIES_MAX, WORK_GROUP, Announcer, WakeListener


async def _consumers(client: redis.Redis, stream: str) -> dict[str, int]:
    infos = await client.xinfo_consumers(stream, WORK_GROUP)
    return {info["name"].decode(): info["pending"] for info in infos}


async def test_idle_consumers_without_pending_entries_are_forgotten(redis_url: str) -> None:
    stream = f"test-{uuid.uuid4().hex}:work"
    client = redis.Redis.from_url(redis_url)
    try:
        await client.xgroup_create(stream, WORK_GROUP, id="$", mkstream=True)
        await client.xgroup_createconsumer(stream, WORK_GROUP, "ghost-idle")
        await client.xadd(stream, {"run_id": "r1"})
        # a consumer that read an entry and died before acknowledging it
        await client.xreadgroup(WORK_GROUP, "ghost-pending", {stream: ">"}, count=1)
        await asyncio.sleep(0.2)

        woken = asyncio.Event()
        stop = asyncio.Event()
        listener = WakeListener(client, "live", woken.set, stream=stream, dead_after_ms=100)
        running = asyncio.create_task(listener.run(stop))
        await client.xadd(stream, {"run_id": "r2"})
        await asyncio.wait_for(woken.wait(), 5)
        consumers = await _consumers(client, stream)
        assert "ghost-idle" not in consumers
        # its entry is not yet idle long enough to reclaim, so the consumer stays
        assert consumers["ghost-pending"] == 1
        assert consumers["live"] == 0

        stop.set()
        await asyncio.wait_for(running, 5)
        assert "live" not in await _consumers(client, stream)  # a clean stop leaves
    finally:
        await client.delete(stream)
        await client.aclose()


async def test_an_announcement_posts_an_entry_per_run_up_to_the_cap(redis_url: str) -> None:
    stream = f"test-{uuid.uuid4().hex}:work"
    client = redis.Redis.from_url(redis_url)
    try:
        announcer = Announcer(client, stream)
        await announcer.announce(["r1", "r2"])
        assert await client.xlen(stream) == 2
        await announcer.announce(f"run-{n}" for n in range(WAKE_ENTRIES_MAX * 4))
        assert await client.xlen(stream) == 2 + WAKE_ENTRIES_MAX
    finally:
        await client.delete(stream)
        await client.aclose()
