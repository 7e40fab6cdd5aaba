"""A worker stopping with a run that outlasts the grace period gives it back at once."""

from __future__ import annotations

import dataclasses

import asyncpg
import httpx

from tests.tools_servers.step_tool import StepTool
from tests.workers import (
    FAST,
    create_task,
    of_type,
    register_tool,
    run_events,
    run_now,
    run_to_end,
    running_workers,
)


async def test_a_run_outlasting_the_grace_period_is_released_to_another_worker(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
) -> None:
    server, base_url = tool
    await register_tool(client, "test.ok", f"{base_url}/ok")
    await register_tool(client, "test.wait", f"{base_url}/gate/stuck")
    steps = [
        {"id": "first", "uses": "test.ok"},
        {"id": "second", "uses": "test.wait"},
        {"id": "third", "uses": "test.ok"},
    ]
    task = await create_task(client, steps)
    impatient = dataclasses.replace(FAST, grace_seconds=0.3, lease_seconds=30.0)
    async with running_workers(database_url, redis_url, config=impatient):
        run_id = await run_now(client, task["id"])
        await server.wait_entered("stuck")

    held = await pool.fetchrow(
        "SELECT locked_by, locked_until FROM due_work WHERE run_id = $1", run_id
    )
    assert held is not None
    assert (held["locked_by"], held["locked_until"]) == (None, None)
    server.gate("stuck").opened.set()
    async with running_workers(database_url, redis_url, config=impatient):
        run = await run_to_end(client, run_id, within=10)  # far less than the 30 s lease

    assert run["status"] == "succeeded", run
    assert server.per_key() == {
        f"{run_id}:first": 1,
        f"{run_id}:second": 2,
        f"{run_id}:third": 1,
    }
    assert len(of_type(await run_events(pool, run_id), "run.started")) == 2
