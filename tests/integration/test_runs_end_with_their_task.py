"""A task canceled or deleted ends its runs that are parked (waiting for an event, sleeping,
awaiting an approval) at once, and a run that would park after its task ended ends instead:
a parked run holds no lease, so nothing else would ever settle one waiting without a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from domain.events import RunWaiting
from projections.registry import inline_projections
from services.pipeline.recording import RecordOutcome
from services.worker.leases import lease
from services.worker.recorder import Recorder
from tests.workers import (
    AUTH,
    api_client,
    create_task,
    get_run,
    of_type,
    run_events,
    run_in,
    run_now,
    running_workers,
)

WAIT_FOREVER = [
    {"id": "reply", "uses": "orchestrator.wait_for_event", "with": {"topic": "mail.*"}},
]
SLEEP_LONG = [{"id": "nap", "uses": "orchestrator.sleep", "with": {"seconds": 3600}}]
ASK = [
    {
        "id": "ask",
        "uses": "orchestrator.request_approval",
        "with": {"message": "go?", "data": [1, 2]},
    }
]


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url) as test_client:
        yield test_client


async def _parked(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pipeline: list[dict[str, Any]]
) -> tuple[str, str]:
    task = await create_task(client, pipeline)
    run_id = await run_now(client, task["id"])
    async with running_workers(database_url, redis_url):
        await run_in(client, run_id, ("waiting", "awaiting_approval"))
    return task["id"], run_id


@pytest.mark.parametrize(
    ("pipeline", "command", "reason"),
    [
        (WAIT_FOREVER, "delete", "the task was deleted"),
        (WAIT_FOREVER, "cancel", "the task was canceled"),
        (SLEEP_LONG, "cancel", "the task was canceled"),
        (ASK, "delete", "the task was deleted"),
    ],
)
async def test_a_parked_run_ends_when_its_task_is_canceled_or_deleted(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    pipeline: list[dict[str, Any]],
    command: str,
    reason: str,
) -> None:
    task_id, run_id = await _parked(client, database_url, redis_url, pipeline)
    if command == "delete":
        response = await client.delete(f"/tasks/{task_id}", headers=AUTH)
    else:
        response = await client.post(f"/tasks/{task_id}/cancel", headers=AUTH)
    assert response.status_code in (200, 204), response.text
    assert (await get_run(client, run_id))["status"] == "canceled"
    (canceled,) = of_type(await run_events(pool, run_id), "run.canceled")
    assert canceled["reason"] == reason
    assert await pool.fetchval("SELECT count(*) FROM due_work WHERE run_id = $1", run_id) == 0
    waiting = await client.get("/runs", params={"status": "waiting"}, headers=AUTH)
    assert run_id not in [r["run_id"] for r in waiting.json()["items"]]
    published = await client.post(
        "/events", json={"topic": "mail.reply", "payload": {}}, headers=AUTH
    )
    assert published.json()["resumed_runs"] == []


async def test_a_run_that_would_park_after_its_task_was_canceled_ends_instead(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    task = await create_task(client, WAIT_FOREVER)
    run_id = await run_now(client, task["id"])
    async with pool.acquire() as conn:
        (leased,), _ = await lease(conn, inline_projections(), "w-1", limit=1, lease_seconds=30)
    assert leased.run_id == run_id
    # The task ends while the run is running (its worker is between steps) ...
    response = await client.post(f"/tasks/{task['id']}/cancel", headers=AUTH)
    assert response.status_code == 200, response.text
    assert (await get_run(client, run_id))["status"] == "running"
    # ... and then the worker records the run parking at its wait.
    recorder = Recorder(pool, inline_projections(), "w-1")
    stop = asyncio.Event()
    flushing = asyncio.create_task(recorder.run(stop))
    wait = RunWaiting(
        run_id=run_id,
        step_id="reply",
        attempt=1,
        kind="event",
        tool="orchestrator.wait_for_event",
        topic="mail.*",
    )
    outcome = await recorder.record(run_id, [wait])
    stop.set()
    await flushing
    assert outcome is RecordOutcome.RECORDED
    events = await run_events(pool, run_id)
    assert of_type(events, "run.waiting") == []
    (canceled,) = of_type(events, "run.canceled")
    assert canceled["reason"] == "the task was canceled"
    assert (await get_run(client, run_id))["status"] == "canceled"
