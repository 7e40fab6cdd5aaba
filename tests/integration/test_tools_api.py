"""The tool catalog over HTTP against real Postgres: register, list, read, replace, remove."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from projections.rebuild import rebuild
from projections.registry import inline_projections
from services.api.app import ApiConfig, create_app
from services.application.tool_store import known_tool_addresses
from services.runtime.admin_token import token_hash

ADMIN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
EXAMPLES = Path(__file__).parent.parent / "data" / "examples"
CATALOG: list[dict[str, Any]] = json.loads((EXAMPLES / "tool_catalog_example.json").read_text())
BUILTINS = [
    "debug.echo",
    "http.request",
    "orchestrator.publish_event",
    "orchestrator.request_approval",
    "orchestrator.sleep",
    "orchestrator.wait_for_event",
    "pipeline.foreach",
    "shell.exec",
]
FORECAST = {
    "address": "weather-mcp.forecast",
    "transport": "mcp",
    "endpoint": "http://127.0.0.1:8087/mcp",
}


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(ApiConfig(database_url, redis_url, token_hash(ADMIN)))
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def register(client: AsyncTestClient[Any], body: dict[str, Any], status: int = 201) -> Any:
    response = await client.post("/tools", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    return response.json()


async def tool_events(client: AsyncTestClient[Any]) -> list[dict[str, Any]]:
    page = (await client.get("/events", headers=AUTH)).json()
    return [e for e in page["items"] if e["type"].startswith("tool.")]


async def test_the_example_catalog_registers_unchanged(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    for entry in CATALOG:
        tool = await register(client, entry)
        expected = {"description": None, "command": None, **entry, "builtin": False}
        assert tool == expected
        assert (await client.get(f"/tools/{entry['address']}", headers=AUTH)).json() == tool
    listed = (await client.get("/tools", headers=AUTH)).json()["items"]
    addresses = [t["address"] for t in listed]
    assert addresses == sorted([*BUILTINS, *(e["address"] for e in CATALOG)])
    assert [t["address"] for t in listed if t["builtin"]] == BUILTINS
    async with pool.acquire() as conn:
        assert await known_tool_addresses(conn) == frozenset(addresses)


async def test_builtins_are_listed_with_schemas_and_cannot_be_changed(
    client: AsyncTestClient[Any],
) -> None:
    echo = (await client.get("/tools/debug.echo", headers=AUTH)).json()
    assert (echo["transport"], echo["builtin"], echo["input_schema"]) == (
        "builtin",
        True,
        {"type": "object"},
    )
    replaced = await client.post("/tools", json={**FORECAST, "address": "debug.echo"}, headers=AUTH)
    assert replaced.status_code == 422
    assert replaced.json()["errors"][0]["field"] == "address"
    removed = await client.delete("/tools/pipeline.foreach", headers=AUTH)
    assert removed.status_code == 409
    assert removed.headers["content-type"] == "application/problem+json"
    assert await tool_events(client) == []


async def test_replace_and_remove_a_tool(client: AsyncTestClient[Any], pool: asyncpg.Pool) -> None:
    first = await register(client, FORECAST)
    assert (first["input_schema"], first["output_schema"], first["timeout_seconds"]) == (
        {"type": "object"},
        {},
        30,
    )
    stdio = {**FORECAST, "endpoint": None, "command": ["uvx", "weather-mcp"], "timeout_seconds": 5}
    replaced = await register(client, stdio, status=200)
    assert (replaced["command"], replaced["endpoint"], replaced["timeout_seconds"]) == (
        ["uvx", "weather-mcp"],
        None,
        5,
    )
    assert (await client.get("/tools/weather-mcp.forecast", headers=AUTH)).json() == replaced
    assert await register(client, stdio, status=200) == replaced  # the same again: no event

    assert (await client.delete("/tools/weather-mcp.forecast", headers=AUTH)).status_code == 204
    gone = await client.get("/tools/weather-mcp.forecast", headers=AUTH)
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    assert (await client.delete("/tools/weather-mcp.forecast", headers=AUTH)).status_code == 404
    async with pool.acquire() as conn:
        assert "weather-mcp.forecast" not in await known_tool_addresses(conn)

    assert await register(client, FORECAST) == first  # a removed address can come back
    events = await tool_events(client)
    assert [(e["type"], e["stream"], e["version"]) for e in events] == [
        ("tool.registered", "tool-weather-mcp.forecast", 1),
        ("tool.registered", "tool-weather-mcp.forecast", 2),
        ("tool.removed", "tool-weather-mcp.forecast", 3),
        ("tool.registered", "tool-weather-mcp.forecast", 4),
    ]
    assert {e["meta"]["actor"] for e in events} == {"admin"}
    assert events[1]["data"]["command"] == ["uvx", "weather-mcp"]


async def test_the_tool_table_rebuilds_from_the_log(
    client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    for entry in CATALOG:
        await register(client, entry)
    await register(client, {**CATALOG[0], "timeout_seconds": 60}, status=200)
    await client.delete(f"/tools/{CATALOG[1]['address']}", headers=AUTH)
    async with pool.acquire() as conn:
        before = [dict(r) for r in await conn.fetch("SELECT * FROM tool ORDER BY address")]
        assert await rebuild(conn, inline_projections()) == 4
        after = [dict(r) for r in await conn.fetch("SELECT * FROM tool ORDER BY address")]
    assert after == before
    assert [(r["address"], r["version"]) for r in after] == [(CATALOG[0]["address"], 2)]
    assert after[0]["registered_at"] < after[0]["updated_at"]


BAD = [
    ({**FORECAST, "address": "forecast"}, "address"),
    ({**FORECAST, "address": "weather mcp.forecast"}, "address"),
    ({**FORECAST, "input_schema": {"type": "objekt"}}, "input_schema.type"),
    ({**FORECAST, "output_schema": {"required": "x"}}, "output_schema.required"),
    ({**FORECAST, "transport": "http", "endpoint": None}, "endpoint"),
    ({**FORECAST, "endpoint": None}, "endpoint"),
    ({**FORECAST, "endpoint": "ftp://127.0.0.1/x"}, "endpoint"),
    ({**FORECAST, "transport": "builtin"}, "transport"),
    ({**FORECAST, "transport": "grpc"}, "transport"),
    ({**FORECAST, "url": "http://127.0.0.1:8087/mcp"}, "url"),
    ({**FORECAST, "timeout_seconds": 0}, "timeout_seconds"),
    ({**FORECAST, "timeout_seconds": 3601}, "timeout_seconds"),
    ({**FORECAST, "scopes": ["Notify"]}, "scopes[0]"),
    ({**FORECAST, "scopes": "notify"}, "scopes"),
    ({"transport": "mcp", "endpoint": "http://127.0.0.1:8087/mcp"}, "address"),
]


@pytest.mark.parametrize(("body", "field"), BAD)
async def test_bad_registrations_are_refused_naming_the_field(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/tools", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field
    assert await pool.fetchval("SELECT count(*) FROM events") == 0


async def test_the_catalog_needs_a_token(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/tools")).status_code == 401
    assert (await client.post("/tools", json=FORECAST)).status_code == 401
