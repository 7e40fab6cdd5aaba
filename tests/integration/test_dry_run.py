"""Dry runs: the real runner with fake tools renders and validates a pipeline, calling nothing."""

from __future__ import annotations

import os
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
    # Closed: a field it does not list cannot be there.
    "output_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["temp", "alerts"],
        "properties": {
            "temp": {"type": "integer", "examples": [21]},
            "alerts": {"type": "array", "items": {"type": "string"}},
        },
    },
}


# Open: its schema says only that it answers an object.
INVENTORY = {
    "address": "shop.inventory",
    "transport": "http",
    "endpoint": "http://127.0.0.1:9/inventory",
    "output_schema": {"type": "object"},
}
# Its input is typed, so a value it gets from an open output is checked only by the run.
RESTOCK = {
    "address": "shop.restock",
    "transport": "http",
    "endpoint": "http://127.0.0.1:9/restock",
    "input_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["sku", "count"],
        "properties": {
            "sku": {"type": "string", "pattern": "^[A-Z]+-[0-9]+$"},
            "count": {"type": "integer", "minimum": 1},
        },
    },
    "output_schema": {"type": "object", "properties": {"ordered": {"type": "boolean"}}},
}


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    config = ApiConfig(database_url, redis_url, token_hash(ADMIN), secret_key=os.urandom(32))
    async with AsyncTestClient(create_app(config)) as test_client:
        for tool in (FORECAST, INVENTORY, RESTOCK):
            response = await test_client.post("/tools", json=tool, headers=AUTH)
            assert response.status_code == 201, response.text
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


def fetch(step_id: str = "b") -> dict[str, Any]:
    return {"id": step_id, "uses": "http.request", "with": {"url": "https://api.example.com/n"}}


async def test_a_field_of_an_untyped_json_body_is_unknown_not_missing(
    client: AsyncTestClient[Any],
) -> None:
    # The tester's task: its real runs succeed, so its dry run must not say otherwise.
    body = task([fetch(), {"id": "c", "uses": "debug.echo", "with": {"n": "${steps.b.json.n}"}}])
    created = await client.post("/tasks", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    response = await client.post(f"/tasks/{created.json()['id']}/dry_run", headers=AUTH)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["ok"], result["error"]) == (True, None), result
    b, c = result["steps"]
    assert b["output"]["json"] == {"$unknown": "output.json"}
    assert c["input"] == {"n": {"$unknown": "steps.b.json.n"}}
    assert c["output"] == c["input"]
    assert c["note"] == "not known until the run, so not checked: steps.b.json.n"


async def test_what_an_open_schema_may_hold_flows_on_unknown_through_every_template_form(
    client: AsyncTestClient[Any],
) -> None:
    result = await dry(
        client,
        [
            {"id": "stock", "uses": "shop.inventory"},
            {
                "id": "order",
                "uses": "shop.restock",
                "if": "steps.stock.low.count > `0`",
                "with": {"sku": "${steps.stock.items[3].sku}", "count": "${steps.stock.low.count}"},
            },
            {
                "id": "each",
                "uses": "pipeline.foreach",
                "with": {
                    "items_path": "steps.stock.items",
                    "body": [{"id": "say", "uses": "debug.echo", "with": {"t": "${item.name}!"}}],
                },
            },
            {
                "id": "sum",
                "uses": "debug.echo",
                "with": {"total": "${sum(steps.stock.items[*].count)}", "ok": "${steps.order}"},
            },
        ],
    )
    assert result["ok"] is True, result
    steps = {s["id"]: s for s in result["steps"]}
    assert steps["stock"]["output"] == {}
    assert steps["order"]["status"] == "succeeded"  # its condition cannot be decided: checked
    assert steps["order"]["input"] == {
        "sku": {"$unknown": "steps.stock.items[3].sku"},
        "count": {"$unknown": "steps.stock.low.count"},
    }
    assert steps["each[0].say"]["input"] == {"t": "<unknown item.name>!"}
    assert steps["each[0].say"]["note"].endswith(": item.name")
    assert steps["sum"]["input"]["total"] == {"$unknown": "sum(steps.stock.items[*].count)"}
    assert steps["sum"]["input"]["ok"] == {"ordered": True}


async def test_what_a_schema_rules_out_still_fails(client: AsyncTestClient[Any]) -> None:
    wx = {"id": "wx", "uses": "weather.forecast", "with": {"city": "${params.city}"}}
    cases = {
        "${steps.wx.temp.high}": "steps.wx.temp is a number, not an object",
        "${steps.b.status.code}": "steps.b.status is a number, not an object",
        # any header may be there, but each is a string
        "${steps.b.headers.etag.tag}": "steps.b.headers.etag is a string, not an object",
    }
    for template, reason in cases.items():
        pipeline = [wx, fetch(), {"id": "say", "uses": "debug.echo", "with": {"x": template}}]
        result = await dry(client, pipeline)
        assert result["ok"] is False, template
        assert result["error"].startswith(f"say.with.x: {template}: {reason}"), result["error"]
    closed = await dry(
        client, [wx, {"id": "say", "uses": "debug.echo", "with": {"x": "${steps.wx.humidity}"}}]
    )
    assert "steps.wx has no field 'humidity' (it has temp, alerts)" in closed["error"]


async def test_an_unknown_value_does_not_hide_what_is_known_to_break_an_input(
    client: AsyncTestClient[Any],
) -> None:
    stock = {"id": "stock", "uses": "shop.inventory"}
    cases = [
        # an unknown count, but a field the tool does not take
        ({"sku": "A-1", "count": "${steps.stock.n}", "color": "red"}, "input"),
        # the text around an unknown is text all the same, and count takes an integer
        ({"sku": "A-1", "count": "n=${steps.stock.n}"}, "input.count"),
        # a known value the pattern refuses, beside an unknown one
        ({"sku": "a1", "count": "${steps.stock.n}"}, "input.sku"),
    ]
    for given, field in cases:
        order = {"id": "order", "uses": "shop.restock", "with": given}
        result = await dry(client, [stock, order])
        assert result["ok"] is False, given
        assert result["steps"][1]["error"].startswith(f"{field}: "), result["steps"][1]


async def test_a_step_with_a_secret_keeps_what_the_next_one_cannot_know_open(
    client: AsyncTestClient[Any],
) -> None:
    secret = {"name": "API_TOKEN", "value": "t0ken-value", "allowed_tools": ["http.request"]}
    assert (await client.post("/secrets", json=secret, headers=AUTH)).status_code == 201
    b = fetch()
    b["with"]["headers"] = {"Authorization": "Bearer ${secrets.API_TOKEN}"}
    use = {"id": "c", "uses": "debug.echo", "with": {"n": "${steps.b.json.n}"}}
    result = await dry(client, [b, use, {**use, "id": "d"}])
    assert result["ok"] is True, result
    assert result["steps"][0]["input"]["headers"] == {"Authorization": "Bearer [secret:API_TOKEN]"}
    assert result["steps"][2]["input"] == {"n": {"$unknown": "steps.b.json.n"}}
