"""Debounced event tasks: a burst of events becomes one run that sees the last one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.workers import AUTH, api_client, run_to_end, running_workers


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url) as test_client:
        yield test_client


async def event_task(client: httpx.AsyncClient, **fields: Any) -> str:
    body = {
        "title": "rebuild",
        "schedule_kind": "event",
        "schedule_expr": "docs.changed",
        "payload": {
            "pipeline": [
                {
                    "id": "rebuild",
                    "uses": "debug.echo",
                    "with": {"last": "${event.payload.n}", "count": "${event.debounce.count}"},
                }
            ]
        },
        **fields,
    }
    response = await client.post("/tasks", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def runs_of(client: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    response = await client.get("/runs", params={"task_id": task_id}, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


async def publish(client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
    body = {"topic": "docs.changed", "payload": payload}
    response = await client.post("/events", json=body, headers=AUTH)
    assert response.status_code == 202, response.text


async def test_ten_events_within_the_window_make_one_run_seeing_the_last_and_the_count(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    task_id = await event_task(client, debounce_seconds=5)
    for n in range(10):
        await publish(client, {"n": n})
    (run,) = await runs_of(client, task_id)
    assert run["event"]["debounce"]["count"] == 10
    async with running_workers(database_url, redis_url):
        done = await run_to_end(client, run["id"], within=30)
    assert done["status"] == "succeeded", done
    assert done["steps"][0]["output"] == {"last": 9, "count": 10}
    # due when the window that opened with the first event ends, and not started before
    run_at = datetime.fromisoformat(done["run_at"])
    assert run_at == datetime.fromisoformat(done["scheduled_for"]) + timedelta(seconds=5)
    assert datetime.fromisoformat(done["started_at"]) >= run_at
    # the window is over: the next event starts a run of its own
    await publish(client, {"n": 10})
    assert len(await runs_of(client, task_id)) == 2


async def test_a_debounce_key_keeps_one_run_per_key(client: httpx.AsyncClient) -> None:
    task_id = await event_task(client, debounce_seconds=60, debounce_key="payload.user")
    for n, user in enumerate(["ana", "bo", "ana", "ana", "bo"]):
        await publish(client, {"n": n, "user": user})
    runs = await runs_of(client, task_id)
    counts = sorted(
        (r["event"]["payload"]["user"], r["event"]["debounce"]["count"], r["event"]["payload"]["n"])
        for r in runs
    )
    assert counts == [("ana", 3, 3), ("bo", 2, 4)]


async def test_debounce_is_refused_where_it_means_nothing(client: httpx.AsyncClient) -> None:
    body = {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "debounce_seconds": 5,
    }
    response = await client.post("/tasks", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "debounce_seconds"
    body = {
        "title": "t",
        "schedule_kind": "event",
        "schedule_expr": "x",
        "debounce_seconds": 5,
        "debounce_key": "payload.(",
    }
    response = await client.post("/tasks", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "debounce_key"
