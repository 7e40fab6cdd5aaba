"""Workers against real Postgres and Redis: a run goes from run_now to succeeded, step by step."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis
from litestar.testing import AsyncTestClient

from projections.registry import inline_projections
from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash
from services.store.pool import open_pool
from services.worker.service import Worker, WorkerConfig

ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
FAST = WorkerConfig(concurrency=8, lease_seconds=2.0, poll_seconds=0.2, grace_seconds=2.0)


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(ApiConfig(database_url, redis_url, token_hash(ADMIN)))
    async with AsyncTestClient(app) as test_client:
        yield test_client


@contextlib.asynccontextmanager
async def running_workers(
    database_url: str, redis_url: str | None, count: int = 1, config: WorkerConfig = FAST
) -> AsyncIterator[list[Worker]]:
    """``count`` workers in this process, each with its own pool, stopped (drained) after."""
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        workers = []
        for _ in range(count):
            pool = await stack.enter_async_context(open_pool(database_url, size=6, warm=1))
            client = redis.Redis.from_url(redis_url, socket_timeout=5) if redis_url else None
            if client is not None:
                stack.push_async_callback(client.aclose)
            workers.append(Worker(pool, inline_projections(), config, redis_client=client))
        tasks = [asyncio.create_task(w.run(stop)) for w in workers]
        try:
            yield workers
        finally:
            stop.set()
            await asyncio.gather(*tasks)


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def run_to_end(client: AsyncTestClient[Any], run_id: str) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        run = (await client.get(f"/runs/{run_id}", headers=AUTH)).json()
        return run if run["status"] in ("succeeded", "dead", "canceled", "deduplicated") else None

    return await eventually(finished)


async def create_task(
    client: AsyncTestClient[Any], pipeline: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    body = {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": pipeline, "params": {"n": 3, "who": "Ana"}},
        **fields,
    }
    response = await client.post("/tasks", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()


async def run_now(client: AsyncTestClient[Any], task_id: str) -> str:
    response = await client.post(f"/tasks/{task_id}/run_now", headers=AUTH)
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


async def test_a_run_succeeds_and_records_each_step_with_types(
    client: AsyncTestClient[Any], database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    task = await create_task(
        client,
        [
            {
                "id": "first",
                "uses": "debug.echo",
                "with": {"n": "${params.n}", "hi": "Hi ${params.who}"},
            },
            {
                "id": "second",
                "uses": "debug.echo",
                "with": {"prev": "${steps.first}"},
                "save_as": "out",
            },
        ],
    )
    async with running_workers(database_url, redis_url):
        run = await run_to_end(client, await run_now(client, task["id"]))
    assert run["status"] == "succeeded", run
    steps = {s["id"]: s for s in run["steps"]}
    assert steps["first"]["input"] == {"n": 3, "hi": "Hi Ana"}
    assert steps["second"]["output"] == {"prev": {"n": 3, "hi": "Hi Ana"}}
    types = [
        r["type"]
        for r in await pool.fetch(
            "SELECT type FROM events WHERE stream = $1 ORDER BY version", f"run-{run['id']}"
        )
    ]
    assert types == [
        "run.queued",
        "run.started",
        "run.step_succeeded",
        "run.step_succeeded",
        "run.succeeded",
    ]
    assert await pool.fetchval("SELECT count(*) FROM due_work") == 0
