"""Workers against real Postgres and Redis: a run goes from run_now to succeeded, step by step."""

from __future__ import annotations

import asyncpg
import httpx

from tests.workers import AUTH, create_task, run_now, run_to_end, running_workers


async def test_a_run_succeeds_and_records_each_step_with_types(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
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
    last_run = (await client.get(f"/tasks/{task['id']}", headers=AUTH)).json()["last_run"]
    assert last_run["run_id"] == run["id"]
    assert last_run["status"] == "succeeded"
    assert last_run["trigger"] == "run_now"
    assert last_run["finished_at"] is not None
