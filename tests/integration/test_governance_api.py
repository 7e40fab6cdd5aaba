"""Governance settings over HTTP: refused with 422 naming the field, read back as set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash
from tests.tools_servers.http_tool_server import serve
from tests.tools_servers.mcp_echo_server import build_server

ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
TASK = {"title": "t", "schedule_kind": "cron", "schedule_expr": "0 0 1 1 *"}
TOOL = {"address": "paid.tool", "transport": "http", "endpoint": "https://tools.example/x"}


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(ApiConfig(database_url, redis_url, token_hash(ADMIN)))
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def _field(client: AsyncTestClient[Any], method: str, path: str, body: Any) -> str:
    response = await client.request(method, path, json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return str(response.json()["errors"][0]["field"])


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"quiet_hours": [{"start": "25:00", "end": "07:00"}]}, "quiet_hours[0].start"),
        ({"quiet_hours": [{"start": "07:00", "end": "07:00"}]}, "quiet_hours[0].end"),
        ({"quiet_hours": [{"start": "22:00"}]}, "quiet_hours[0].end"),
        ({"budget_per_day": -1}, "budget_per_day"),
    ],
)
async def test_bad_task_governance_is_refused_naming_the_field(
    client: AsyncTestClient[Any], extra: dict[str, Any], field: str
) -> None:
    assert await _field(client, "POST", "/tasks", {**TASK, **extra}) == field


async def test_a_task_keeps_its_budget_and_quiet_hours(client: AsyncTestClient[Any]) -> None:
    body = {**TASK, "budget_per_day": 2.5, "quiet_hours": [{"start": "22:00", "end": "07:30"}]}
    created = await client.post("/tasks", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    definition = created.json()["definition"]
    assert definition["budget_per_day"] == 2.5
    assert definition["quiet_hours"] == [{"start": "22:00", "end": "07:30"}]
    patched = await client.patch(
        f"/tasks/{created.json()['id']}", json={"quiet_hours": []}, headers=AUTH
    )
    assert patched.status_code == 200, patched.text
    assert "quiet_hours" not in patched.json()["definition"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"rate_limit": {"calls": 0, "per_seconds": 1}}, "rate_limit.calls"),
        ({"rate_limit": {"calls": 1, "per_seconds": 0}}, "rate_limit.per_seconds"),
        ({"rate_limit": {"calls": 1, "per_seconds": 1, "burst": 2}}, "rate_limit.burst"),
        ({"cost_per_call": -0.5}, "cost_per_call"),
    ],
)
async def test_bad_tool_governance_is_refused_naming_the_field(
    client: AsyncTestClient[Any], extra: dict[str, Any], field: str
) -> None:
    assert await _field(client, "POST", "/tools", {**TOOL, **extra}) == field


async def test_a_tool_shows_its_rate_limit_and_cost(client: AsyncTestClient[Any]) -> None:
    body = {**TOOL, "rate_limit": {"calls": 5, "per_seconds": 60}, "cost_per_call": 0.02}
    assert (await client.post("/tools", json=body, headers=AUTH)).status_code == 201
    shown = (await client.get("/tools/paid.tool", headers=AUTH)).json()
    assert shown["rate_limit"] == {"calls": 5, "per_seconds": 60.0}
    assert shown["cost_per_call"] == 0.02


async def test_agent_limits_are_checked_and_read_back(client: AsyncTestClient[Any]) -> None:
    agent = (
        await client.post("/agents", json={"name": "a", "scopes": ["tasks:read"]}, headers=AUTH)
    ).json()
    path = f"/agents/{agent['id']}/limits"
    empty = (await client.get(path, headers=AUTH)).json()
    assert (empty["budget_per_day"], empty["quiet_hours"], empty["updated_at"]) == (None, [], None)
    assert await _field(client, "PUT", path, {"timezone": "Mars/Olympus"}) == "timezone"
    assert await _field(client, "PUT", path, {"rate_limits": {"writes": "1/s"}}) == (
        "rate_limits.writes"
    )
    limits = {
        "budget_per_day": 10,
        "quiet_hours": [{"start": "21:00", "end": "08:00"}],
        "timezone": "Europe/Chisinau",
        "rate_limits": {"commands": "2/s burst 4"},
    }
    response = await client.put(path, json=limits, headers=AUTH)
    assert response.status_code == 200, response.text
    assert (await client.get(path, headers=AUTH)).json() == response.json()
    assert response.json()["budget_per_day"] == 10
    missing = await client.put("/agents/nobody/limits", json={}, headers=AUTH)
    assert missing.status_code == 404


async def test_an_mcp_import_gives_every_tool_the_rate_limit_and_cost(
    client: AsyncTestClient[Any],
) -> None:
    server, _ = build_server()
    with serve(server.streamable_http_app()) as base_url:
        body = {
            "name": "echo",
            "endpoint": f"{base_url}/mcp",
            "cost_per_call": 0.1,
            "rate_limit": {"calls": 3, "per_seconds": 10},
        }
        response = await client.post("/tools/mcp_servers", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert items
    assert {(t["cost_per_call"], t["rate_limit"]["calls"]) for t in items} == {(0.1, 3)}
