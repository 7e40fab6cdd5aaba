"""Published events fire event and condition tasks: one run each, in the event's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from projections.rebuild import rebuild
from projections.registry import inline_projections
from tests.workers import AUTH, api_client, eventually, run_to_end, running_workers

ECHO = [
    {
        "id": "echo",
        "uses": "debug.echo",
        "with": {
            "topic": "${event.topic}",
            "who": "${event.payload.who}",
            "line": "${event.payload.who} at ${event.source}",
        },
    }
]


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url) as test_client:
        yield test_client


async def task(client: httpx.AsyncClient, expr: str, kind: str = "event", **fields: Any) -> str:
    body = {
        "title": expr,
        "schedule_kind": kind,
        "schedule_expr": expr,
        "payload": {"pipeline": ECHO},
        **fields,
    }
    response = await client.post("/tasks", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def publish(
    client: httpx.AsyncClient, topic: str, key: str | None = None, **payload: Any
) -> dict[str, Any]:
    headers = {**AUTH, **({"Idempotency-Key": key} if key else {})}
    response = await client.post(
        "/events", json={"topic": topic, "payload": payload}, headers=headers
    )
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


async def runs_of(pool: asyncpg.Pool, task_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT run_id, trigger, queued->'event' AS event FROM runs WHERE task_id = $1", task_id
    )


async def test_an_event_fires_matching_active_tasks_once_and_a_repeat_fires_nothing(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    glob = await task(client, "calendar.*")
    exact = await task(client, "calendar.created")
    filtered = await task(client, "calendar.*", filter="payload.who == 'Ana'")
    other = await task(client, "mail.*")
    paused = await task(client, "calendar.*")
    assert (await client.post(f"/tasks/{paused}/pause", headers=AUTH)).status_code == 200

    first = await publish(client, "calendar.created", key="k1", who="Bob")
    assert sorted(first["triggered_tasks"]) == sorted([glob, exact])
    again = await publish(client, "calendar.created", key="k1", who="Bob")
    assert again == first
    assert len(await runs_of(pool, glob)) == 1
    assert await pool.fetchval("SELECT count(*) FROM events WHERE type = 'event.received'") == 1
    # run.queued is in the same transaction as the event: consecutive positions
    positions = await pool.fetch(
        "SELECT position, type FROM events WHERE position >= $1 ORDER BY position",
        first["position"],
    )
    assert [r["type"] for r in positions] == ["event.received", "run.queued", "run.queued"]

    ana = await publish(client, "calendar.moved", who="Ana")
    assert sorted(ana["triggered_tasks"]) == sorted([glob, filtered])
    assert await runs_of(pool, other) == []
    assert await runs_of(pool, paused) == []


async def test_an_event_triggered_run_sees_the_event_in_its_templates(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    task_id = await task(client, "build.*")
    published = await publish(client, "build.done", who="Ana")
    assert published["triggered_tasks"] == [task_id]
    (queued,) = await runs_of(pool, task_id)
    assert queued["trigger"] == "event"
    async with running_workers(database_url, redis_url):
        run = await run_to_end(client, queued["run_id"])
    assert run["status"] == "succeeded", run
    assert run["steps"][0]["output"] == {"topic": "build.done", "who": "Ana", "line": "Ana at api"}


async def test_a_condition_task_fires_only_when_its_condition_turns_true(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    hot = await task(client, "sensor.*", "condition", condition="event.payload.t > `30`")
    fired = []
    for t in [10, 35, 40, 20, 25, 31, 50, 5, 45]:
        fired.append(hot in (await publish(client, "sensor.temp", t=t))["triggered_tasks"])
    assert fired == [False, True, False, False, False, True, False, False, True]
    runs = await runs_of(pool, hot)
    assert [r["trigger"] for r in runs] == ["condition"] * 3
    values = await pool.fetch(
        "SELECT data->>'value' AS value FROM events WHERE type = 'condition.evaluated'"
        " ORDER BY position"
    )
    assert [r["value"] for r in values] == ["false", "true", "false", "true", "false", "true"]
    # the state is a read model: a rebuild from the log gives the same
    before = await pool.fetch("SELECT * FROM condition_state")
    async with pool.acquire() as conn:
        await rebuild(conn, inline_projections())
    assert await pool.fetch("SELECT * FROM condition_state") == before
    assert before[0]["value"] is True


async def test_a_changed_condition_starts_again_from_unknown(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    hot = await task(client, "sensor.*", "condition", condition="event.payload.t > `30`")
    assert (await publish(client, "sensor.temp", t=35))["triggered_tasks"] == [hot]
    patched = await client.patch(
        f"/tasks/{hot}", json={"condition": "event.payload.t > `20`"}, headers=AUTH
    )
    assert patched.status_code == 200, patched.text
    assert await pool.fetchval("SELECT count(*) FROM condition_state") == 0
    assert (await publish(client, "sensor.temp", t=36))["triggered_tasks"] == [hot]
    assert (await publish(client, "sensor.temp", t=37))["triggered_tasks"] == []


async def test_bad_event_and_condition_tasks_are_refused_with_422(
    client: httpx.AsyncClient,
) -> None:
    cases = [
        ({"schedule_kind": "condition", "schedule_expr": "a.*"}, "condition"),
        ({"schedule_kind": "event", "schedule_expr": "a.*", "filter": "payload.[x"}, "filter"),
        (
            {
                "schedule_kind": "condition",
                "schedule_expr": "a.*",
                "condition": "a",
                "condition_cron": "* * * * *",
            },
            "condition_cron",
        ),
    ]
    for fields, field in cases:
        response = await client.post("/tasks", json={"title": "t", **fields}, headers=AUTH)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field


async def test_the_publish_event_tool_fires_event_tasks_too(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    listener = await task(client, "chain.next")
    step = {
        "id": "pub",
        "uses": "orchestrator.publish_event",
        "with": {"topic": "chain.next", "payload": {"who": "Eve"}},
    }
    body = {
        "title": "first",
        "schedule_kind": "event",
        "schedule_expr": "chain.start",
        "payload": {"pipeline": [step]},
    }
    assert (await client.post("/tasks", json=body, headers=AUTH)).status_code == 201
    await publish(client, "chain.start")
    async with running_workers(database_url, redis_url):

        async def chained() -> list[asyncpg.Record]:
            return await runs_of(pool, listener)

        (queued,) = await eventually(chained)
        run = await run_to_end(client, queued["run_id"])
    output = run["steps"][0]["output"]
    assert output["who"] == "Eve"
    assert output["line"].startswith("Eve at run:")
