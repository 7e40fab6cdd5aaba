"""A secret a tool sends back as an object key is masked like one in a value (issue 18,
finding 7): not in the events table, the run's API and page, nor a later step's input."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.ui_client import signed_in
from tests.workers import (
    ADMIN,
    AUTH,
    FAST,
    api_client,
    create_task,
    register_tool,
    run_now,
    run_to_end,
    running_workers,
    serve_in_thread,
)

KEY = os.urandom(32)
VALUE = "key-shaped-secret-8d3f0b"


async def keyed_tool(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An http tool answering with its input's token as keys, nested and inside longer keys."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    token = json.loads(body)["token"]
    answer = {"as_key": {token: 1}, "deeper": {"a": [{f"x-{token}-y": {token: token}}]}}
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(answer).encode()})


@pytest.fixture
def tool_url() -> Iterator[str]:
    with serve_in_thread(keyed_tool, lifespan="off") as base_url:
        yield base_url


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url, secret_key=KEY) as test_client:
        yield test_client


async def test_a_secret_returned_as_a_key_is_masked_everywhere_it_is_kept(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool_url: str,
) -> None:
    await register_tool(client, "vault.keyed", f"{tool_url}/keyed")
    secret = {"name": "API_TOKEN", "value": VALUE, "allowed_tools": ["vault.*"]}
    assert (await client.post("/secrets", json=secret, headers=AUTH)).status_code == 201
    task = await create_task(
        client,
        [
            {"id": "call", "uses": "vault.keyed", "with": {"token": "${secrets.API_TOKEN}"}},
            {"id": "after", "uses": "debug.echo", "with": {"prev": "${steps.call}"}},
        ],
    )
    async with running_workers(
        database_url, redis_url, config=dataclasses.replace(FAST, secret_key=KEY)
    ):
        run = await run_to_end(client, await run_now(client, task["id"]))

    assert run["status"] == "succeeded", run
    output = {s["id"]: s for s in run["steps"]}["call"]["output"]
    assert output["as_key"] == {"[secret:API_TOKEN]": 1}
    assert output["deeper"]["a"][0] == {
        "x-[secret:API_TOKEN]-y": {"[secret:API_TOKEN]": "[secret:API_TOKEN]"}
    }
    stored = await pool.fetchval("SELECT string_agg(data::text, '') FROM events")
    pages = [
        await client.get(path, headers=AUTH)
        for path in (f"/runs/{run['id']}", "/events?limit=1000")
    ]
    async with signed_in(client, ADMIN) as ui:
        pages.append(await ui.get(f"/ui/runs/{run['id']}"))
    assert [page.status_code for page in pages] == [200, 200, 200]
    for text in [stored, *(page.text for page in pages)]:
        assert VALUE not in text
