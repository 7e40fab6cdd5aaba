"""`bench ingest` never waits forever: its stream reader stops when asked, and every wait that
stops moving (or whose relay or reader ended) fails with a message naming what did not arrive."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import redis.asyncio as redis

from domain.events import TaskDefinition
from ordinaut_bench import ingest
from ordinaut_bench.ingest import IngestBenchError, _drain, _Relay
from ordinaut_bench.relay_lag import Watcher, WatchError, watching
from services.store.order import START, Cursor
from tests.support import create_tasks


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    # As the bench makes it: the socket timeout is far longer than a blocking read.
    connection = redis.Redis.from_url(redis_url, socket_timeout=30)
    yield connection
    await connection.aclose()


@pytest.fixture
def stream() -> str:
    return f"test-{uuid.uuid4().hex}:events"


async def test_the_stream_reader_stops_whenever_asked(client: redis.Redis, stream: str) -> None:
    # Cancelling a blocking XREAD could be swallowed by redis-py, leaving the reader running
    # and the bench waiting for it forever; asked at any moment, it must stop.
    rng = random.Random(5)
    await client.xadd(stream, {"type": "other"}, id="1-0")
    try:
        for _ in range(20):
            async with watching(client, stream, START) as watcher:
                await asyncio.sleep(rng.uniform(0, 0.25))
            assert watcher.task.done()
            assert not watcher.task.cancelled()
            assert watcher.seen.top == Cursor.from_entry_id("1-0")
    finally:
        await client.delete(stream)


async def test_a_failed_stream_reader_is_reported(client: redis.Redis, stream: str) -> None:
    await client.set(stream, "not a stream")
    try:
        watcher = Watcher(client, stream, START)
        await asyncio.wait([watcher.task])
        with pytest.raises(WatchError, match=f"reader of {stream} stopped early"):
            watcher.check()
        with pytest.raises(WatchError, match=f"reader of {stream} failed"):
            await watcher.stop()
    finally:
        await client.delete(stream)


async def test_entries_that_never_arrive_fail_the_wait_naming_them(
    pool: asyncpg.Pool, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "STALL_SECONDS", 0.3)
    with pytest.raises(IngestBenchError, match="ingest consumers stalled: 0 of 5 entries stored"):
        await _drain(pool, [], 5, client, None, None)


async def test_events_the_relay_never_publishes_fail_the_wait_naming_them(
    pool: asyncpg.Pool, client: redis.Redis, stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "STALL_SECONDS", 0.3)
    definition = TaskDefinition(title="t", schedule_kind="event", schedule_expr="a.*")
    await create_tasks(pool, [definition], datetime.now(UTC))
    last = await pool.fetchrow(
        "SELECT txid, position FROM events ORDER BY txid DESC, position DESC LIMIT 1"
    )
    top = Cursor(int(last["txid"]), last["position"]).entry_id
    message = f"relay to {stream} stalled: 0-0 of {top} published"
    with pytest.raises(IngestBenchError, match=message):
        await _drain(pool, [], 0, client, stream, None)


def test_a_relay_that_exited_fails_the_wait_at_once() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait(30)
    with pytest.raises(IngestBenchError, match=r"relay to s:events exited early \(exit code 3\)"):
        _Relay(process, "s:events").check()
