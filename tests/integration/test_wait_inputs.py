"""What a wait's filter and a sleep's instant may be: checked when a task is created or
dry-run, rendered so that no value can change what a filter tests, failed (not waited on
for ever) when a run finds them broken."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from domain.envelope import EventMeta
from domain.events import TaskCreated, TaskDefinition, task_stream
from domain.ownership import ADMIN as ADMIN_ACTOR
from projections.registry import inline_projections
from services.store.events import StreamAppend, append_in_transaction
from tests.workers import (
    AUTH,
    api_client,
    create_task,
    get_run,
    run_in,
    run_now,
    run_to_end,
    running_workers,
)


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url) as test_client:
        yield test_client


def wait_for(filter_: str) -> dict[str, Any]:
    return {
        "id": "reply",
        "uses": "orchestrator.wait_for_event",
        "with": {"topic": "mail.reply", "filter": filter_},
    }


def body(*steps: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": list(steps), "params": params or {}},
    }


async def create(client: httpx.AsyncClient, task: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/tasks", json=task, headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def refused(client: httpx.AsyncClient, task: dict[str, Any], field: str) -> str:
    """The reason both creating and dry-running ``task`` are refused for, naming ``field``."""
    created = await client.post("/tasks", json=task, headers=AUTH)
    dry_run = await client.post("/tasks/dry_run", json={"task": task}, headers=AUTH)
    for response in (created, dry_run):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        (error,) = response.json()["errors"]
        assert error["field"] == field
    return str(created.json()["errors"][0]["reason"])


async def publish(client: httpx.AsyncClient, payload: dict[str, Any]) -> list[str]:
    event = {"topic": "mail.reply", "payload": payload}
    response = await client.post("/events", json=event, headers=AUTH)
    assert response.status_code == 202, response.text
    return list(response.json()["resumed_runs"])


@pytest.mark.parametrize(
    ("filter_", "reason"),
    [
        ("event.payload.id == ", "invalid JMESPath: incomplete expression"),
        ("event.payload.id == '${params.id}' ||", "(each ${...} read as one literal value)"),
        ("${params.filter}", "a filter cannot be one template"),
        ('event.payload."${params.key}" == `1`', 'a template cannot stand inside "..."'),
    ],
)
async def test_a_filter_that_cannot_compile_is_refused_like_an_event_tasks(
    client: httpx.AsyncClient, filter_: str, reason: str
) -> None:
    task = body(wait_for(filter_), params={"id": "x", "filter": "true", "key": "id"})
    assert reason in await refused(client, task, "payload.pipeline[0].with.filter")


@pytest.mark.parametrize("value", ["zz' || `true` || 'a", "O'Brien", "C:\\dir\\", "`x`"])
async def test_a_run_waits_for_exactly_the_value_its_filter_was_given(
    client: httpx.AsyncClient, database_url: str, redis_url: str, value: str
) -> None:
    task = await create(
        client, body(wait_for("event.payload.id == '${params.id}'"), params={"id": value})
    )
    run_id = await run_now(client, task["id"])
    async with running_workers(database_url, redis_url):
        await run_in(client, run_id, ("waiting",))
        assert await publish(client, {"id": "other"}) == []
        assert await publish(client, {"id": value + "'"}) == []
        await asyncio.sleep(0.3)
        assert (await get_run(client, run_id))["status"] == "waiting"
        assert await publish(client, {"id": value}) == [run_id]
        done = await run_to_end(client, run_id)
    assert done["status"] == "succeeded", done
    assert done["steps"][0]["output"]["payload"] == {"id": value}


async def test_a_recorded_filter_that_cannot_compile_fails_the_run_instead_of_waiting(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    # A task recorded before filters were checked when tasks were created.
    task_id = str(uuid.uuid4())
    pipeline = [wait_for("event.payload.id == ")]
    definition = TaskDefinition(
        title="legacy",
        schedule_kind="cron",
        schedule_expr="0 0 1 1 *",
        payload={"pipeline": pipeline},
    )
    created = TaskCreated(
        task_id=task_id, definition=definition, next_run_at=datetime(2099, 1, 1, tzinfo=UTC)
    )
    meta = EventMeta(actor=ADMIN_ACTOR, correlation_id=str(uuid.uuid4()))
    async with pool.acquire() as conn, conn.transaction():
        await append_in_transaction(
            conn, [StreamAppend(task_stream(task_id), [created])], meta, inline_projections()
        )
    run_id = await run_now(client, task_id)
    async with running_workers(database_url, redis_url):
        done = await run_to_end(client, run_id)
    assert done["status"] == "dead", done
    assert done["steps"][0]["status"] == "failed"
    assert "filter: invalid JMESPath: incomplete expression" in done["error"]


def sleep(options: dict[str, Any]) -> dict[str, Any]:
    return {"id": "nap", "uses": "orchestrator.sleep", "with": options}


@pytest.mark.parametrize(
    ("until", "reason"),
    [
        ("yesterday", "'yesterday' is not an ISO-8601 instant"),
        ("2099-01-01T00:00:00Z", "is more than a year away"),
        ("2030-01-01T09:00:00", "has no UTC offset"),
    ],
)
async def test_a_literal_sleep_instant_that_would_fail_is_refused(
    client: httpx.AsyncClient, until: str, reason: str
) -> None:
    assert reason in await refused(
        client, body(sleep({"until": until})), "payload.pipeline[0].with.until"
    )


async def test_a_literal_sleep_is_checked_on_update_too(client: httpx.AsyncClient) -> None:
    task = await create_task(client, [sleep({"seconds": 1})])
    bad = body(sleep({"until": "yesterday"}))
    response = await client.patch(
        f"/tasks/{task['id']}", json={"payload": bad["payload"]}, headers=AUTH
    )
    assert response.status_code == 422, response.text
    assert "payload.pipeline[0].with.until" in response.text


async def test_a_templated_sleep_instant_is_checked_when_rendered(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    task = await create(
        client, body(sleep({"until": "${params.when}"}), params={"when": "yesterday"})
    )
    dry = await client.post(f"/tasks/{task['id']}/dry_run", headers=AUTH)
    assert dry.status_code == 200, dry.text
    assert dry.json()["ok"] is False
    assert "until: 'yesterday' is not an ISO-8601 instant" in dry.json()["error"]
    fine = await client.post(
        f"/tasks/{task['id']}/dry_run", json={"params": {"when": soon}}, headers=AUTH
    )
    assert fine.json()["ok"] is True, fine.text
    run_id = await run_now(client, task["id"])
    async with running_workers(database_url, redis_url):
        done = await run_to_end(client, run_id)
    assert done["status"] == "dead", done
    assert "until: 'yesterday' is not an ISO-8601 instant" in done["error"]
