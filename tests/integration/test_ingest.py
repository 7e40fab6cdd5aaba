"""The ingest consumer against real Postgres and Redis: entries become events exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis
from redis.exceptions import ResponseError

from domain.events import TaskDefinition
from ordinaut_bench.ingest import bench_ingest
from projections.registry import inline_projections
from services.ingest.consumer import IngestConfig, IngestConsumer
from tests.integration.test_worker_redis_outage import RedisServer
from tests.support import create_tasks, db_now
from tests.tools_servers.http_tool_server import closed_port
from tests.workers import eventually


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


@pytest.fixture
async def config(client: redis.Redis) -> AsyncIterator[IngestConfig]:
    """Streams of this test alone (the Redis server is shared), deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex}"
    yield IngestConfig(
        stream=f"{prefix}:ingest",
        group=f"{prefix}:ingestors",
        dead_stream=f"{prefix}:dead",
        batch=500,
        block_ms=100,
        max_payload_bytes=4096,
        reclaim_idle_ms=200,
    )
    await client.delete(f"{prefix}:ingest", f"{prefix}:dead", "ordinaut:work")


@contextlib.asynccontextmanager
async def consuming(
    pool: asyncpg.Pool, client: redis.Redis, config: IngestConfig, name: str | None = None
) -> AsyncIterator[IngestConsumer]:
    consumer = IngestConsumer(pool, client, inline_projections(), config, name=name)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield consumer
    finally:
        stop.set()
        await task


async def add(client: redis.Redis, stream: str, entries: list[dict[str, Any]]) -> list[str]:
    async with client.pipeline(transaction=False) as pipe:
        for fields in entries:
            pipe.xadd(stream, fields)
        return [i.decode() for i in await pipe.execute()]


def good(n: int, **extra: Any) -> dict[str, Any]:
    return {"topic": "order.placed", "payload": json.dumps({"n": n}), **extra}


async def count(pool: asyncpg.Pool, kind: str) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events WHERE type = $1", kind))


async def test_good_entries_become_events_and_fire_event_tasks_exactly_once(
    pool: asyncpg.Pool, client: redis.Redis, config: IngestConfig
) -> None:
    definition = TaskDefinition(title="orders", schedule_kind="event", schedule_expr="order.*")
    (task_id,) = await create_tasks(pool, [definition], await db_now(pool))
    await add(
        client,
        config.stream,
        [
            good(1, idempotency_key="k1", source="shop"),
            good(2, idempotency_key="k2"),
            good(3),
            good(1, idempotency_key="k1", source="shop"),
        ],
    )
    async with consuming(pool, client, config):
        await eventually(lambda: _at_least(pool, "event.received", 3))
        await add(client, config.stream, [good(2, idempotency_key="k2")])  # re-sent later
        await eventually(lambda: _pending_is_empty(client, config))
    assert await count(pool, "event.received") == 3
    runs = await pool.fetch(
        "SELECT queued FROM runs WHERE task_id = $1 ORDER BY queued_at", task_id
    )
    assert [json.loads(r["queued"])["event"]["payload"]["n"] for r in runs] == [1, 2, 3]
    actors = await pool.fetch(
        "SELECT DISTINCT meta->>'actor' AS a FROM events WHERE type = 'event.received' ORDER BY 1"
    )
    assert [r["a"] for r in actors] == ["ingest:shop", "ingest:stream"]
    assert await client.xlen(config.dead_stream) == 0


async def _at_least(pool: asyncpg.Pool, kind: str, n: int) -> bool:
    return await count(pool, kind) >= n


async def _pending_is_empty(client: redis.Redis, config: IngestConfig) -> bool:
    try:
        summary = await client.xpending(config.stream, config.group)
    except ResponseError:  # the consumer has not created its group yet
        return False
    return int(summary["pending"]) == 0 and await _all_read(client, config)


async def _all_read(client: redis.Redis, config: IngestConfig) -> bool:
    groups = await client.xinfo_groups(config.stream)
    return all(g["lag"] == 0 for g in groups if g["name"].decode() == config.group)


MALFORMED = [
    ({"topic": "a.b", "payload": "{not json"}, "payload: not valid JSON"),
    ({"payload": "{}"}, "topic: missing field"),
    ({"topic": "has space", "payload": "{}"}, "topic: must be"),
    ({"topic": "a.b", "payload": "[1, 2]"}, "payload: must be a JSON object"),
    (
        {"topic": "a.b", "payload": json.dumps({"x": "y" * 5000})},
        "payload: 5009 bytes, over the limit of 4096",
    ),
    ({"topic": "a.b"}, "payload: missing field"),
    ({"topic": "a.b", "payload": '{"x": "nul\\u0000"}'}, "payload: a text in it holds a NUL"),
    ({"topic": "a.b", "payload": "{}", "occurred_at": "yesterday"}, "occurred_at: not an ISO"),
    ({"topic": b"\xff\xfe", "payload": "{}"}, "topic: not UTF-8"),
    ({"topic": "a.b", "payload": "{}", "idempotency_key": "k" * 201}, "idempotency_key: must"),
]


async def test_malformed_entries_are_dead_lettered_while_good_ones_flow(
    pool: asyncpg.Pool, client: redis.Redis, config: IngestConfig
) -> None:
    entries: list[dict[str, Any]] = []
    expected: dict[int, str] = {}
    for n in range(10_000):
        # A backslash before "u0000" is no NUL: such a text is recorded like any other.
        entries.append(
            good(n) if n % 1000 else {**good(n), "payload": json.dumps({"p": "C:\\u0000"})}
        )
        if n % 100 == 50:
            fields, reason = MALFORMED[len(expected) % len(MALFORMED)]
            expected[len(entries)] = reason
            entries.append(fields)
    ids = await add(client, config.stream, entries)
    async with consuming(pool, client, config):
        await eventually(lambda: _pending_is_empty(client, config), within=120)
    assert await count(pool, "event.received") == 10_000
    dead = await client.xrange(config.dead_stream)
    assert len(dead) == 100
    by_source = {fields[b"source_id"].decode(): fields for _, fields in dead}
    for index, reason in expected.items():
        fields = by_source[ids[index]]
        assert fields[b"reason"].decode().startswith(reason), fields[b"reason"]
        assert fields[b"source_stream"].decode() == config.stream
        original = entries[index]
        for key in original:
            assert key.encode() in fields


async def test_a_dead_consumers_pending_entries_are_reclaimed_by_another(
    pool: asyncpg.Pool, client: redis.Redis, config: IngestConfig
) -> None:
    await client.xgroup_create(config.stream, config.group, id="0", mkstream=True)
    await add(client, config.stream, [good(n) for n in range(5)])
    # consumer A reads them and dies before recording or acknowledging any
    taken = await client.xreadgroup(config.group, "A", {config.stream: ">"}, count=10)
    assert len(taken[0][1]) == 5
    async with consuming(pool, client, config, name="B"):
        await eventually(lambda: _at_least(pool, "event.received", 5))
        await eventually(lambda: _pending_is_empty(client, config))
    assert await count(pool, "event.received") == 5


async def test_an_entry_delivered_too_often_is_dead_lettered(
    pool: asyncpg.Pool, client: redis.Redis, config: IngestConfig
) -> None:
    await client.xgroup_create(config.stream, config.group, id="0", mkstream=True)
    (poison,) = await add(client, config.stream, [good(1)])
    await client.xreadgroup(config.group, "A", {config.stream: ">"}, count=10)
    # as if five consumers in turn took it and died
    await client.xclaim(config.stream, config.group, "A", 0, [poison], retrycount=5)
    async with consuming(pool, client, config, name="B"):
        await eventually(lambda: _pending_is_empty(client, config))
    ((_, fields),) = await client.xrange(config.dead_stream)
    assert fields[b"reason"] == b"delivered more than 5 times without being acknowledged"
    assert fields[b"source_id"].decode() == poison
    assert await count(pool, "event.received") == 0


async def test_bench_ingest_reports_throughput_and_leaves_no_streams(
    database_url: str, redis_url: str, client: redis.Redis
) -> None:
    out = io.StringIO()
    live_work = await client.xlen("ordinaut:work")
    figures = await bench_ingest(
        database_url, redis_url, events=2000, batch=500, rate=200, seconds=1, out=out
    )
    assert figures["events"] == 2000
    # Runs of the scratch database are announced on the bench's own work stream, not the live one.
    assert figures["runs_fired"] > 0
    assert await client.xlen("ordinaut:work") == live_work
    assert figures["events_per_second"] > 0
    assert figures["relayed_per_second"] > 0
    assert figures["relay_lag_p99_ms"] >= figures["relay_lag_p50_ms"] > 0
    assert "relay_lag_p99_ms" in out.getvalue()
    stream = out.getvalue().split(" to ", 1)[1].split()[0]
    assert stream.startswith("bench-")
    prefix = stream.rsplit(":", 1)[0]
    assert await client.exists(stream, f"{prefix}:events", f"{prefix}:dead", f"{prefix}:work") == 0


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path, closed_port())
    await server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_the_consumer_waits_out_a_redis_restart_and_carries_on(
    pool: asyncpg.Pool, own_redis: RedisServer, config: IngestConfig
) -> None:
    own = redis.Redis.from_url(own_redis.url, socket_timeout=2)
    try:
        async with consuming(pool, own, replace(config, max_backoff_seconds=0.5)):
            await add(own, config.stream, [good(n) for n in range(3)])
            await eventually(lambda: _at_least(pool, "event.received", 3))
            own_redis.stop()  # without persistence: it comes back empty
            await asyncio.sleep(1.0)
            await own_redis.start()
            await add(own, config.stream, [good(n) for n in range(3, 6)])
            await eventually(lambda: _at_least(pool, "event.received", 6), within=20)
    finally:
        await own.aclose()
    assert await count(pool, "event.received") == 6


async def test_two_consumers_record_each_key_once(
    pool: asyncpg.Pool, client: redis.Redis, config: IngestConfig
) -> None:
    small = replace(config, batch=50)
    # every key twice, far apart, so the two copies usually go to different consumers
    await add(
        client, config.stream, [good(n % 1000, idempotency_key=f"k{n % 1000}") for n in range(2000)]
    )
    async with consuming(pool, client, small, name="A"), consuming(pool, client, small, name="B"):
        await eventually(lambda: _pending_is_empty(client, config), within=60)
    assert await count(pool, "event.received") == 1000
    assert await client.xlen(config.dead_stream) == 0


async def test_a_key_reused_with_other_content_is_dead_lettered(
    pool: asyncpg.Pool, client: redis.Redis, config: IngestConfig
) -> None:
    ids = await add(
        client, config.stream, [good(1, idempotency_key="k"), good(2, idempotency_key="k")]
    )
    async with consuming(pool, client, config):
        await eventually(lambda: _pending_is_empty(client, config))
    assert await count(pool, "event.received") == 1
    ((_, fields),) = await client.xrange(config.dead_stream)
    assert fields[b"source_id"].decode() == ids[1]
    assert fields[b"reason"].startswith(b"idempotency_key: idempotency key 'k' was already used")
