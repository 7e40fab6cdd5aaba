"""Dry runs: the real runner with fake tools renders and validates a pipeline, calling nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash

ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
# Nothing listens here: a dry run must never call it.
FORECAST = {
    "address": "weather.forecast",
    "transport": "http",
    "endpoint": "http://127.0.0.1:9/forecast",
    "input_schema": {
        "type": "object",
        "required": ["city"],
        "properties": {"city": {"type": "string"}},
    },
    "output_schema": {
        "type": "object",
        "required": ["temp", "alerts"],
        "properties": {
            "temp": {"type": "integer", "examples": [21]},
            "alerts": {"type": "array", "items": {"type": "string"}},
        },
    },
}


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(ApiConfig(database_url, redis_url, token_hash(ADMIN)))
    async with AsyncTestClient(app) as test_client:
        assert (await test_client.post("/tools", json=FORECAST, headers=AUTH)).status_code == 201
        yield test_client


def task(pipeline: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 8 * * *",
        "payload": {"pipeline": pipeline, "params": {"city": "Chisinau"}},
    }


async def dry(client: AsyncTestClient[Any], pipeline: list[dict[str, Any]]) -> dict[str, Any]:
    response = await client.post("/tasks/dry_run", json={"task": task(pipeline)}, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_fake_outputs_flow_into_later_steps_with_their_types(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    events = await pool.fetchval("SELECT count(*) FROM events")
    result = await dry(
        client,
        [
            {"id": "wx", "uses": "weather.forecast", "with": {"city": "${params.city}"}},
            {
                "id": "ok",
                "uses": "orchestrator.request_approval",
                "with": {"message": "It is ${steps.wx.temp} C", "data": ["a", "b"]},
            },
            {
                "id": "each",
                "uses": "pipeline.foreach",
                "with": {
                    "items_path": "steps.ok.approved_items",
                    "body": [
                        {
                            "id": "say",
                            "uses": "debug.echo",
                            "with": {"x": "${item}", "t": "${steps.wx.temp}"},
                        }
                    ],
                },
            },
        ],
    )
    assert result["ok"] is True, result
    steps = {s["id"]: s for s in result["steps"]}
    assert steps["wx"]["input"] == {"city": "Chisinau"}
    assert steps["ok"]["input"]["message"] == "It is 21 C"
    assert steps["each[1].say"]["output"] == {"x": "b", "t": 21}
    assert await pool.fetchval("SELECT count(*) FROM events") == events


async def test_a_template_that_misses_reports_the_step_and_path(
    client: AsyncTestClient[Any],
) -> None:
    result = await dry(
        client,
        [
            {"id": "wx", "uses": "weather.forecast", "with": {"city": "${params.city}"}},
            {"id": "say", "uses": "debug.echo", "with": {"x": "${steps.wx.humidity}"}},
        ],
    )
    assert result["ok"] is False
    assert "say.with.x" in result["error"]
    assert "humidity" in result["error"]


async def test_an_input_that_breaks_the_tool_schema_fails_its_step(
    client: AsyncTestClient[Any],
) -> None:
    result = await dry(client, [{"id": "wx", "uses": "weather.forecast", "with": {"town": "x"}}])
    assert result["ok"] is False
    assert result["steps"][0]["status"] == "failed"
    assert "city" in result["steps"][0]["error"]


async def test_dry_run_of_a_stored_task_with_other_params(client: AsyncTestClient[Any]) -> None:
    created = await client.post(
        "/tasks",
        json=task([{"id": "wx", "uses": "weather.forecast", "with": {"city": "${params.city}"}}]),
        headers=AUTH,
    )
    url = f"/tasks/{created.json()['id']}/dry_run"
    response = await client.post(url, json={"params": {"city": "Iasi"}}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["steps"][0]["input"] == {"city": "Iasi"}


async def test_an_invalid_task_is_refused_like_a_create(client: AsyncTestClient[Any]) -> None:
    body = {"task": {**task([]), "schedule_expr": "61 * * * *"}}
    response = await client.post("/tasks/dry_run", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "schedule_expr"


async def test_a_sleep_returns_at_once_and_a_wait_for_an_event_ends_the_dry_run(
    client: AsyncTestClient[Any],
) -> None:
    pipeline = [
        {"id": "nap", "uses": "orchestrator.sleep", "with": {"seconds": 3600}},
        {
            "id": "reply",
            "uses": "orchestrator.wait_for_event",
            "with": {
                "topic": "mail.reply",
                "filter": "event.payload.to == '${params.city}'",
                "timeout_seconds": 60,
            },
        },
        {"id": "file", "uses": "debug.echo", "with": {"text": "${steps.reply.payload.text}"}},
    ]
    result = await dry(client, pipeline)
    assert result["ok"] is True, result
    nap, reply = result["steps"]
    assert (nap["status"], set(nap["output"])) == ("succeeded", {"until"})
    assert reply["status"] == "waiting"
    assert reply["input"]["filter"] == "event.payload.to == 'Chisinau'"
    assert "would wait for an event on 'mail.reply'" in reply["note"]
