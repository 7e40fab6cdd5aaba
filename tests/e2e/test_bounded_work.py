"""One request or one run cannot freeze a process: `ordinaut api` and `ordinaut worker` run for
real while /health/live is timed concurrently (issue 18, finding 3).

A foreach nested 3 deep over 70 items (343,000 iterations) used to block the API's event loop
for seconds in a dry run; now it is refused at once, naming the limit's setting. Timings are
generous for a loaded 2-core machine, yet far below the seconds the old code blocked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.processes import Fleet, environment
from tests.workers import ADMIN, AUTH, of_type, run_events

ITEMS = list(range(70))
LIVE_WITHIN = 0.5  # seconds /health/live may take at worst (the old code: 12 s)
REFUSED_WITHIN = 1.0  # seconds a refusal may take


@pytest.fixture
def fleet(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Fleet]:
    stream = f"bounded-{uuid.uuid4().hex[:8]}:events"
    env = environment(database_url, redis_url, stream, tmp_path / "data", ADMIN)
    env["ORDINAUT_WORKER_POLL_SECONDS"] = "0.2"
    started = Fleet(env, tmp_path / "logs")
    try:
        yield started
    finally:
        started.kill_all()


@contextlib.asynccontextmanager
async def live_latencies(url: str) -> AsyncIterator[list[float]]:
    """Seconds each GET ``url`` took, polled every 20 ms while the block runs."""
    latencies: list[float] = []
    stop = asyncio.Event()

    async def poll() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            while not stop.is_set():
                began = time.perf_counter()
                response = await client.get(url)
                latencies.append(time.perf_counter() - began)
                assert response.status_code == 200
                await asyncio.sleep(0.02)

    async def answered(count: int) -> None:
        deadline = time.perf_counter() + 10
        while len(latencies) < count and time.perf_counter() < deadline and not poller.done():  # noqa: ASYNC110 - a bounded poll of a list the prober fills
            await asyncio.sleep(0.01)

    poller = asyncio.create_task(poll())
    await answered(3)  # a few answers before the load (however slow the machine's first one)
    try:
        yield latencies
    finally:
        await answered(len(latencies) + 2)  # and answers after it
        stop.set()
        await poller


def nested(items_path: str, inner_path: str, depth: int = 3) -> dict[str, Any]:
    """A foreach over ``items_path`` whose body nests foreach steps over ``inner_path``."""
    body: list[dict[str, Any]] = [{"id": "echo", "uses": "debug.echo", "with": {"i": "${item}"}}]
    for level in range(depth - 1, 0, -1):
        body = [
            {
                "id": f"loop{level}",
                "uses": "pipeline.foreach",
                "with": {"items_path": inner_path, "body": body},
            }
        ]
    return {
        "id": "loop0",
        "uses": "pipeline.foreach",
        "with": {"items_path": items_path, "body": body},
    }


def task(pipeline: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return {
        "title": "bounded",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": pipeline, "params": params},
    }


def assert_live(latencies: list[float]) -> None:
    assert len(latencies) >= 5, latencies
    assert max(latencies) < LIVE_WITHIN, sorted(latencies)[-5:]


async def test_a_dry_run_of_343000_iterations_is_refused_at_once_and_the_api_stays_live(
    fleet: Fleet,
) -> None:
    api = await fleet.start("api")
    base = f"http://127.0.0.1:{api.api_port}"
    body = {"task": task([nested("params.xs", "params.xs")], xs=ITEMS)}
    async with (
        httpx.AsyncClient(base_url=base, headers=AUTH, timeout=5) as client,
        live_latencies(f"{base}/health/live") as latencies,
    ):
        began = time.perf_counter()
        response = await client.post("/tasks/dry_run", json=body)
        took = time.perf_counter() - began
        created = await client.post("/tasks", json=body["task"])

    assert response.status_code == 422, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "ORDINAUT_RUN_MAX_ITERATIONS" in response.text
    assert took < REFUSED_WITHIN
    assert created.status_code == 422, created.text[:500]
    assert "ORDINAUT_RUN_MAX_ITERATIONS" in created.text
    assert_live(latencies)


async def test_a_dry_run_whose_loops_are_known_only_as_they_run_stops_at_the_limit(
    fleet: Fleet,
) -> None:
    # `index` in the inner items_path: nothing can count the iterations before they run,
    # so the dry run runs up to ORDINAUT_RUN_MAX_ITERATIONS, yielding the loop as it goes.
    api = await fleet.start("api", ORDINAUT_RUN_MAX_ITERATIONS="3000")
    base = f"http://127.0.0.1:{api.api_port}"
    loops = nested("params.xs", "[params.xs, [index]][0]")
    async with (
        httpx.AsyncClient(base_url=base, headers=AUTH, timeout=60) as client,
        live_latencies(f"{base}/health/live") as latencies,
    ):
        response = await client.post("/tasks/dry_run", json={"task": task([loops], xs=ITEMS)})

    assert response.status_code == 422, response.text[:500]
    problem = response.json()
    assert "ORDINAUT_RUN_MAX_ITERATIONS" in problem["detail"], problem
    assert_live(latencies)


async def test_a_worker_fails_the_step_of_a_run_over_the_limit_at_once_and_stays_live(
    fleet: Fleet, pool: asyncpg.Pool
) -> None:
    # Items from an earlier step's output: unknown when the task is created, known once the
    # foreach starts, so the run fails there, before any iteration.
    api, worker = await asyncio.gather(fleet.start("api"), fleet.start("worker"))
    make = {"id": "make", "uses": "debug.echo", "with": {"xs": "${params.xs}"}}
    pipeline = [make, nested("steps.make.xs", "steps.make.xs")]
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.api_port}", headers=AUTH) as client,
        live_latencies(f"http://127.0.0.1:{worker.ops_port}/health/live") as latencies,
    ):
        created = await client.post("/tasks", json=task(pipeline, xs=ITEMS))
        assert created.status_code == 201, created.text
        queued = await client.post(f"/tasks/{created.json()['id']}/run_now")
        run_id = queued.json()["run_id"]
        for _ in range(300):
            run = (await client.get(f"/runs/{run_id}")).json()
            if run["status"] in ("succeeded", "dead"):
                break
            await asyncio.sleep(0.05)

    assert run["status"] == "dead", run
    events = await run_events(pool, run_id)
    [made] = of_type(events, "run.step_succeeded")
    [failed] = of_type(events, "run.step_failed")
    assert failed["step_id"] == "loop0"
    assert "ORDINAUT_RUN_MAX_ITERATIONS" in failed["error"]
    assert (failed["at"] - made["at"]).total_seconds() < REFUSED_WITHIN
    assert_live(latencies)
