"""Redis is only a hint: with it gone, workers poll and due work still runs, once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as redis

from tests.redis_server import RedisServer
from tests.tools_servers.step_tool import StepTool, serving
from tests.workers import (
    api_client,
    create_task,
    eventually,
    of_type,
    register_tool,
    run_events,
    run_now,
    run_to_end,
    running_workers,
)

WORKERS = 2


@pytest.fixture
async def client(database_url: str, own_redis: RedisServer) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, own_redis.url) as test_client:
        yield test_client


@pytest.fixture
def tool() -> Iterator[tuple[StepTool, str]]:
    step_tool = StepTool()
    with serving(step_tool) as base_url:
        yield step_tool, base_url


async def _listening_consumers(url: str) -> int:
    """How many connections wait on the work stream now (the workers' listeners)."""
    client = redis.Redis.from_url(url, socket_timeout=1)
    try:
        return sum(1 for c in await client.client_list() if c.get("cmd") == "xreadgroup")
    finally:
        await client.aclose()


async def test_due_work_runs_by_polling_while_redis_is_down_and_only_once_after(
    client: httpx.AsyncClient,
    database_url: str,
    own_redis: RedisServer,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
) -> None:
    server, base_url = tool
    await register_tool(client, "test.ok", f"{base_url}/ok")
    await register_tool(client, "test.wait", f"{base_url}/gate/outage")
    steps = [{"id": "one", "uses": "test.ok"}, {"id": "two", "uses": "test.ok"}]
    task = await create_task(client, steps)
    waiting = await create_task(client, [{"id": "one", "uses": "test.wait"}, *steps[1:]])
    run_ids: list[str] = []

    async with running_workers(database_url, own_redis.url, WORKERS):
        await eventually(lambda: _has(_listening_consumers(own_redis.url), WORKERS))
        run_ids.append(await run_now(client, task["id"]))
        await run_to_end(client, run_ids[-1])
        run_ids.append(await run_now(client, waiting["id"]))
        await server.wait_entered("outage")

        own_redis.stop()  # with a run in flight
        server.gate("outage").opened.set()
        run_ids += [await run_now(client, task["id"]) for _ in range(5)]
        during = [await run_to_end(client, run_id) for run_id in run_ids]
        assert {run["status"] for run in during} == {"succeeded"}

        await own_redis.start()
        await eventually(lambda: _has(_listening_consumers(own_redis.url), WORKERS), within=20)
        run_ids += [await run_now(client, task["id"]) for _ in range(5)]
        after = [await run_to_end(client, run_id) for run_id in run_ids[-5:]]
        assert {run["status"] for run in after} == {"succeeded"}
        await asyncio.sleep(1.0)  # time for any stray wake-up to (wrongly) start something

    assert server.per_key() == {
        f"{run_id}:{step}": 1 for run_id in run_ids for step in ("one", "two")
    }
    for run_id in run_ids:
        events = await run_events(pool, run_id)
        assert len(of_type(events, "run.started")) == 1, events
        assert len(of_type(events, "run.succeeded")) == 1, events
    assert await pool.fetchval("SELECT count(*) FROM due_work") == 0


async def _has(count: Any, expected: int) -> bool:
    with contextlib.suppress(redis.RedisError, OSError):
        return int(await count) >= expected
    return False
