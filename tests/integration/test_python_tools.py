"""Python tools: registered only from allow-listed modules, run sync or async in a pipeline."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.workers import AUTH, FAST, api_client, create_task, run_now, run_to_end, running_workers

ALLOW = ("tests.tools_servers.python_tools",)
MODULE = "tests.tools_servers.python_tools"


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url, python_allow=ALLOW) as test_client:
        yield test_client


def tool(address: str, function: str, **fields: Any) -> dict[str, Any]:
    return {
        "address": address,
        "transport": "python",
        "callable": f"{MODULE}:{function}",
        "output_schema": {"type": "object"},
        **fields,
    }


async def register(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/tools", json=body, headers=AUTH)


async def test_sync_and_async_python_tools_run_in_a_pipeline(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    add_schema = {
        "type": "object",
        "required": ["a", "b"],
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    }
    response = await register(client, tool("calc.add", "add", input_schema=add_schema))
    assert response.status_code == 201, response.text
    assert response.json()["callable"] == f"{MODULE}:add"
    assert (await register(client, tool("people.greet", "greet"))).status_code == 201
    pipeline = [
        {"id": "sum", "uses": "calc.add", "with": {"a": "${params.n}", "b": 4}},
        {"id": "hello", "uses": "people.greet", "with": {"name": "${params.who}"}},
    ]
    task = await create_task(client, pipeline)
    async with running_workers(
        database_url, redis_url, config=dataclasses.replace(FAST, python_allow=ALLOW)
    ):
        run = await run_to_end(client, await run_now(client, task["id"]))
    assert run["status"] == "succeeded", run
    steps = {s["id"]: s for s in run["steps"]}
    assert steps["sum"]["output"] == {"sum": 7, "in_thread": True}
    assert steps["hello"]["output"] == {"greeting": "Hello, Ana"}


async def test_input_schema_and_exceptions_become_step_errors(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    schema = {
        "type": "object",
        "required": ["reason"],
        "properties": {"reason": {"type": "string"}},
    }
    assert (await register(client, tool("x.explode", "explode", input_schema=schema))).is_success
    config = dataclasses.replace(FAST, python_allow=ALLOW)
    boom = {"id": "boom", "uses": "x.explode"}
    failing = await create_task(
        client, [{**boom, "with": {"reason": "no quota left"}}], max_retries=0
    )
    invalid = await create_task(client, [{**boom, "with": {"reason": 7}}], max_retries=0)
    async with running_workers(database_url, redis_url, config=config):
        raised = await run_to_end(client, await run_now(client, failing["id"]))
        refused = await run_to_end(client, await run_now(client, invalid["id"]))
    assert raised["status"] == "dead"
    assert raised["steps"][0]["error"] == "x.explode raised ValueError: no quota left"
    assert refused["status"] == "dead"
    assert "reason" in refused["steps"][0]["error"]


async def test_a_sync_tool_past_its_timeout_fails_the_step(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    assert (await register(client, tool("x.slow", "slow", timeout_seconds=0.3))).is_success
    task = await create_task(
        client, [{"id": "wait", "uses": "x.slow", "with": {"seconds": 2}}], max_retries=0
    )
    config = dataclasses.replace(FAST, python_allow=ALLOW)
    async with running_workers(database_url, redis_url, config=config):
        run = await run_to_end(client, await run_now(client, task["id"]))
    assert run["status"] == "dead"
    assert run["steps"][0]["error"] == "x.slow timed out after 0.3 s"


async def test_a_worker_without_the_module_allowed_refuses_to_run_it(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    assert (await register(client, tool("people.greet", "greet"))).status_code == 201
    task = await create_task(
        client, [{"id": "hello", "uses": "people.greet", "with": {"name": "Ana"}}], max_retries=0
    )
    async with running_workers(database_url, redis_url):  # allows no python tool
        run = await run_to_end(client, await run_now(client, task["id"]))
    assert run["status"] == "dead"
    assert "ORDINAUT_PYTHON_TOOLS_ALLOW" in run["steps"][0]["error"]


@pytest.mark.parametrize(
    ("callable_", "says"),
    [
        ("os:system", "'os' is not allowed"),
        ("tests.tools_servers:python_tools", "'tests.tools_servers' is not allowed"),
        ("tests.tools_servers.python_tools_evil:add", "is not allowed"),
        ("tests.tools_servers.python_tools", 'must be "package.module:function"'),
        (f"{MODULE}:missing", "has no attribute 'missing'"),
        (f"{MODULE}:not_callable", "is not callable"),
    ],
)
async def test_registration_refuses_callables_outside_the_allow_list(
    client: httpx.AsyncClient, pool: asyncpg.Pool, callable_: str, says: str
) -> None:
    body = {"address": "x.tool", "transport": "python", "callable": callable_}
    response = await register(client, body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "callable"
    assert says in response.json()["detail"]
    assert await pool.fetchval("SELECT count(*) FROM events") == 0
