"""Flow control across four workers: concurrency keys, dedupe, priority, retries and dead runs."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from typing import Any

import asyncpg
import httpx

from services.worker.service import WorkerConfig
from tests.tools_servers.step_tool import StepTool
from tests.workers import (
    AUTH,
    FAST,
    create_task,
    eventually,
    get_run,
    of_type,
    register_tool,
    run_events,
    run_in,
    run_now,
    run_to_end,
    running_workers,
)

WORKERS = 4


async def test_runs_sharing_a_concurrency_key_never_overlap(
    client: httpx.AsyncClient, database_url: str, redis_url: str, tool: tuple[StepTool, str]
) -> None:
    server, base_url = tool
    await register_tool(client, "test.slow", f"{base_url}/slow?seconds=0.01")
    pipeline = [{"id": "one", "uses": "test.slow"}, {"id": "two", "uses": "test.slow"}]
    tasks = [await create_task(client, pipeline, concurrency_key="mailbox") for _ in range(5)]
    run_ids = [await run_now(client, tasks[i % 5]["id"]) for i in range(50)]

    async with running_workers(database_url, redis_url, WORKERS):
        runs = [await run_to_end(client, run_id, within=60) for run_id in run_ids]

    assert {run["status"] for run in runs} == {"succeeded"}
    spans: dict[str, tuple[float, float]] = {}
    for call in server.finished():
        run_id = call.key.split(":")[0]
        start, end = spans.get(run_id, (call.started, call.started))
        spans[run_id] = (min(start, call.started), max(end, call.ended or 0.0))
    ordered = sorted(spans.values())
    assert len(ordered) == 50
    overlaps = [(a, b) for a, b in itertools.pairwise(ordered) if b[0] < a[1]]
    assert overlaps == [], "runs sharing a concurrency key ran at the same time"
    recorded = sorted(
        (datetime.fromisoformat(run["started_at"]), datetime.fromisoformat(run["finished_at"]))
        for run in runs
    )
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(recorded))


async def test_duplicates_inside_the_dedupe_window_are_recorded_not_run(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
) -> None:
    server, base_url = tool
    await register_tool(client, "test.ok", f"{base_url}/ok")
    pipeline = [{"id": "send", "uses": "test.ok"}]
    daily = {"dedupe_key": "daily-report", "dedupe_window_seconds": 60}
    first, second = [await create_task(client, pipeline, **daily) for _ in range(2)]
    short = await create_task(client, pipeline, dedupe_key="short", dedupe_window_seconds=1)
    run_ids = [await run_now(client, task["id"]) for task in (first, first, second)]

    async with running_workers(database_url, redis_url, WORKERS):
        runs = [await run_to_end(client, run_id) for run_id in run_ids]
        late = await run_to_end(client, await run_now(client, first["id"]))
        short_first = await run_to_end(client, await run_now(client, short["id"]))
        await asyncio.sleep(1.1)  # the short window passes
        short_again = await run_to_end(client, await run_now(client, short["id"]))

    ran = [run for run in runs if run["status"] == "succeeded"]
    assert len(ran) == 1, runs
    skipped = [run for run in [*runs, late] if run["status"] == "deduplicated"]
    assert len(skipped) == 3
    for run in skipped:
        (event,) = of_type(await run_events(pool, run["id"]), "run.deduplicated")
        assert (event["dedupe_key"], event["duplicate_of"]) == ("daily-report", ran[0]["id"])
        assert ran[0]["id"] in run["error"]
        assert run["steps"] == []
    assert server.per_key() == {
        f"{ran[0]['id']}:send": 1,
        f"{short_first['id']}:send": 1,
        f"{short_again['id']}:send": 1,
    }
    listed = (await client.get("/runs?status=deduplicated", headers=AUTH)).json()["items"]
    assert {run["id"] for run in listed} == {run["id"] for run in skipped}


async def test_urgent_work_overtakes_a_backlog(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
) -> None:
    server, base_url = tool
    await register_tool(client, "test.slow", f"{base_url}/slow?seconds=0.02")
    pipeline = [{"id": "work", "uses": "test.slow"}]
    backlog = await create_task(client, pipeline, priority=9)
    urgent = await create_task(client, pipeline, priority=1)
    for _ in range(200):
        await run_now(client, backlog["id"])

    async def started() -> int:
        return int(await pool.fetchval("SELECT count(*) FROM runs WHERE started_at IS NOT NULL"))

    one_slot_each = WorkerConfig(**{**FAST.__dict__, "concurrency": 1})
    async with running_workers(database_url, redis_url, WORKERS, one_slot_each):
        await eventually(lambda: _at_least(started, 10))
        urgent_run = await run_to_end(client, await run_now(client, urgent["id"]))

    assert urgent_run["status"] == "succeeded"
    before = await pool.fetchval(
        "SELECT count(*) FROM runs WHERE task_id = $1 AND started_at < $2",
        backlog["id"],
        datetime.fromisoformat(urgent_run["started_at"]),
    )
    assert before < 100, f"{before} of the backlog started before the urgent run"
    assert server.count(f"{urgent_run['id']}:work") == 1


async def _at_least(count: Any, minimum: int) -> bool:
    return int(await count()) >= minimum


async def test_a_failing_run_backs_off_goes_dead_and_an_operator_revives_it(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
) -> None:
    server, base_url = tool
    server.failing = True
    await register_tool(client, "test.ok", f"{base_url}/ok")
    await register_tool(client, "test.flaky", f"{base_url}/flaky")
    pipeline = [{"id": "prepare", "uses": "test.ok"}, {"id": "deliver", "uses": "test.flaky"}]
    retries = {"max_retries": 3, "backoff_strategy": "exponential", "backoff_base_seconds": 0.2}
    task = await create_task(client, pipeline, **retries)

    async with running_workers(database_url, redis_url, WORKERS):
        run_id = await run_now(client, task["id"])
        dead = await run_to_end(client, run_id)
        assert (dead["status"], dead["attempt"]) == ("dead", 4), dead
        assert "HTTP 500" in dead["error"]
        listed = (await client.get("/runs?status=dead", headers=AUTH)).json()["items"]
        assert [run["id"] for run in listed] == [run_id]

        server.failing = False
        response = await client.post(f"/runs/{run_id}/retry", headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json()["status"] in ("queued", "running", "succeeded")
        revived = await run_in(client, run_id, ("succeeded", "dead"))

    assert (revived["status"], revived["attempt"], revived["error"]) == ("succeeded", 5, None)
    assert server.per_key() == {f"{run_id}:prepare": 1, f"{run_id}:deliver": 5}
    events = await run_events(pool, run_id)
    failed = of_type(events, "run.attempt_failed")
    delays = [(e["retry_at"] - e["at"]).total_seconds() for e in _timed(failed)]
    assert [e["attempt"] for e in failed] == [1, 2, 3]
    assert delays == sorted(delays), "the waits between attempts do not grow"
    assert delays[0] < delays[-1] / 2, delays
    starts = of_type(events, "run.started")
    for failure, retry in zip(_timed(failed), starts[1:4], strict=True):
        assert retry["at"] >= failure["retry_at"], "an attempt started before its retry_at"
    assert [e["attempt"] for e in of_type(events, "run.dead")] == [4]
    assert len(of_type(events, "run.succeeded")) == 1
    again = await client.post(f"/runs/{run_id}/retry", headers=AUTH)
    assert again.status_code == 409, again.text
    assert (await get_run(client, run_id))["status"] == "succeeded"


def _timed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events with ``retry_at`` parsed (``at`` already is a datetime)."""
    return [{**e, "retry_at": datetime.fromisoformat(e["retry_at"])} for e in events]
