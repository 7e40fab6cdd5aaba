"""The timer and a worker keep going when PostgreSQL drops their connections (as a restart or a
failover does): they reconnect by themselves and the next due work still runs.
(tests/faults/test_postgres_restart.py restarts a real server under load.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx

from domain.events import TaskDefinition
from projections.registry import inline_projections
from services.timer.service import Timer
from services.worker.service import Worker
from tests.support import PROJECTIONS, create_tasks, db_now, fired
from tests.workers import FAST, create_task, eventually, run_now, run_to_end

NAME = "ordinaut-lost-connection-test"


@contextlib.asynccontextmanager
async def _running(database_url: str, make: object) -> AsyncIterator[asyncio.Task[None]]:
    """``make(pool)`` run until the block ends, on a pool whose connections carry NAME."""
    stop = asyncio.Event()
    async with asyncpg.create_pool(
        database_url, min_size=1, max_size=6, server_settings={"application_name": NAME}
    ) as pool:
        task = asyncio.create_task(make(pool).run(stop))  # type: ignore[operator]
        try:
            yield task
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def _drop_connections(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = $1",
            NAME,
        )
    )


async def test_the_timer_reconnects_after_its_connections_are_dropped(
    database_url: str, pool: asyncpg.Pool
) -> None:
    async with _running(database_url, lambda p: Timer(p, PROJECTIONS)) as timer:
        await asyncio.sleep(0.5)  # asleep, listening for new tasks
        assert await _drop_connections(pool) >= 1
        await asyncio.sleep(0.5)
        assert not timer.done(), timer
        soon = await db_now(pool) + timedelta(seconds=1)
        once = TaskDefinition(title="once", schedule_kind="once", schedule_expr=soon.isoformat())
        (task_id,) = await create_tasks(pool, [once], soon)
        await eventually(lambda: _fired(pool, task_id), within=10)
    assert (await fired(pool))[task_id] == [soon]


async def test_a_worker_reconnects_after_its_connections_are_dropped(
    database_url: str, pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    def worker(p: asyncpg.Pool) -> Worker:
        return Worker(p, inline_projections(), FAST)

    task = await create_task(client, [{"id": "hi", "uses": "debug.echo", "with": {"x": 1}}])
    async with _running(database_url, worker) as running:
        assert (await run_to_end(client, await run_now(client, task["id"])))[
            "status"
        ] == "succeeded"
        assert await _drop_connections(pool) >= 1
        await asyncio.sleep(0.5)
        assert not running.done(), running
        run = await run_to_end(client, await run_now(client, task["id"]), within=20)
    assert run["status"] == "succeeded"


async def _fired(pool: asyncpg.Pool, task_id: str) -> bool:
    return task_id in await fired(pool)
