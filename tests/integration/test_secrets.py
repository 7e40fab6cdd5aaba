"""Secrets: stored sealed, handed only to allowed tools at run time, and never recorded,
returned or logged in clear."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import structlog

from services.runtime.logging import configure_logging
from services.secrets.box import SecretBox, SecretKeyError
from tests.tools_servers.step_tool import StepTool, serving
from tests.workers import (
    AUTH,
    FAST,
    api_client,
    create_task,
    register_tool,
    run_now,
    run_to_end,
    running_workers,
)

KEY = os.urandom(32)
VALUE = "tg-bot-token-5f1e9c0a7d"


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url, secret_key=KEY) as test_client:
        yield test_client


@pytest.fixture
def tool() -> Iterator[tuple[StepTool, str]]:
    step_tool = StepTool()
    with serving(step_tool) as base_url:
        yield step_tool, base_url


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The test run's logging set-up again after a test that configures its own."""
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:], root.level = handlers, level


async def store(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    body = {"name": "TELEGRAM_TOKEN", "value": VALUE, "allowed_tools": ["notify.*"], **body}
    return await client.post("/secrets", json=body, headers=AUTH)


def test_a_ciphertext_opens_only_under_its_key_and_name() -> None:
    box = SecretBox(KEY)
    sealed = box.seal("A", "value")
    assert "value" not in sealed
    assert box.open("A", sealed) == "value"
    with pytest.raises(SecretKeyError):
        box.open("B", sealed)  # moved onto another name
    with pytest.raises(SecretKeyError, match="another key"):
        SecretBox(os.urandom(32)).open("A", sealed)


async def test_secrets_are_stored_sealed_and_listed_without_values(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    created = await store(client, description="bot token")
    assert created.status_code == 201, created.text
    assert "value" not in created.json()
    replaced = await store(client, value=VALUE + "-2", allowed_tools=["notify.send", "notify.*"])
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["allowed_tools"] == ["notify.*", "notify.send"]
    listed = (await client.get("/secrets", headers=AUTH)).json()["items"]
    assert [s["name"] for s in listed] == ["TELEGRAM_TOKEN"]
    everything = await pool.fetchval(
        "SELECT string_agg(data::text, '') FROM events"
    ) + await pool.fetchval("SELECT string_agg(ciphertext, '') FROM secret")
    assert VALUE not in everything

    assert (await client.delete("/secrets/TELEGRAM_TOKEN", headers=AUTH)).status_code == 204
    assert (await client.delete("/secrets/TELEGRAM_TOKEN", headers=AUTH)).status_code == 404
    assert (await client.get("/secrets", headers=AUTH)).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "1abc"}, "name"),
        ({"name": "has space"}, "name"),
        ({"value": ""}, "value"),
        ({"allowed_tools": []}, "allowed_tools"),
        ({"allowed_tools": ["bad tool!"]}, "allowed_tools[0]"),
        ({"valu": "x"}, "valu"),
    ],
)
async def test_bad_secrets_are_refused_naming_the_field(
    client: httpx.AsyncClient, pool: asyncpg.Pool, body: dict[str, Any], field: str
) -> None:
    before = await pool.fetchval("SELECT count(*) FROM events")
    response = await store(client, **body)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.text
    assert await pool.fetchval("SELECT count(*) FROM events") == before


async def test_a_secret_value_may_hold_any_character_as_it_is_stored_sealed(
    client: httpx.AsyncClient,
) -> None:
    created = await store(client, value="binary\u0000value")
    assert created.status_code == 201, created.text
    refused = await store(client, name="OTHER", description="nul\u0000")
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "description"


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"id": "s", "uses": "debug.echo", "if": "secrets.T == 'x'"}, "payload.pipeline[0].if"),
        (
            {
                "id": "s",
                "uses": "orchestrator.publish_event",
                "with": {"topic": "t", "payload": {"k": "${secrets.T}"}},
            },
            "payload.pipeline[0].with.payload.k",
        ),
    ],
)
async def test_secrets_are_refused_where_they_would_be_recorded(
    client: httpx.AsyncClient, step: dict[str, Any], field: str
) -> None:
    body = {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": [step]},
    }
    response = await client.post("/tasks", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert field in response.text


async def test_a_step_gets_the_secret_but_no_record_or_log_line_holds_it(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
    capfd: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    server, base_url = tool
    await register_tool(client, "notify.send", f"{base_url}/ok")
    await register_tool(client, "notify.fail", f"{base_url}/reject")
    await register_tool(client, "other.tool", f"{base_url}/ok")
    assert (await store(client)).status_code == 201
    configure_logging("json", "info")  # as in production, to the captured stderr

    uses_secret = {"token": "${secrets.TELEGRAM_TOKEN}", "text": "bot ${secrets.TELEGRAM_TOKEN}"}
    sent = await create_task(
        client,
        [
            {"id": "send", "uses": "notify.send", "with": uses_secret},
            {"id": "after", "uses": "debug.echo", "with": {"prev": "${steps.send}"}},
        ],
    )
    failing = await create_task(
        client, [{"id": "send", "uses": "notify.fail", "with": uses_secret}], max_retries=0
    )
    elsewhere = await create_task(
        client, [{"id": "leak", "uses": "other.tool", "with": uses_secret}], max_retries=0
    )
    preview = await client.post(f"/tasks/{sent['id']}/dry_run", json={}, headers=AUTH)
    async with running_workers(
        database_url, redis_url, config=dataclasses.replace(FAST, secret_key=KEY)
    ):
        ok = await run_to_end(client, await run_now(client, sent["id"]))
        failed = await run_to_end(client, await run_now(client, failing["id"]))
        refused = await run_to_end(client, await run_now(client, elsewhere["id"]))

    # the allowed tool received the value itself
    received = [c.input for c in server.calls if c.path == "/ok"]
    assert received == [{"token": VALUE, "text": f"bot {VALUE}"}]
    assert ok["status"] == "succeeded", ok
    steps = {s["id"]: s for s in ok["steps"]}
    assert steps["send"]["input"] == {
        "token": "[secret:TELEGRAM_TOKEN]",
        "text": "bot [secret:TELEGRAM_TOKEN]",
    }
    assert steps["after"]["output"]["prev"]["input"]["token"] == "[secret:TELEGRAM_TOKEN]"
    assert failed["status"] == "dead"
    assert "[secret:TELEGRAM_TOKEN]" in failed["steps"][0]["error"]  # the 400 quoted it back
    assert refused["status"] == "dead"
    assert "may not be sent to other.tool" in refused["steps"][0]["error"]
    assert preview.status_code == 200, preview.text
    assert VALUE not in preview.text

    reads = [
        (await client.get(path, headers=AUTH)).text
        for path in (
            f"/runs/{ok['id']}",
            f"/runs/{failed['id']}",
            "/events?limit=1000",
            f"/tasks/{sent['id']}/history",
            "/secrets",
        )
    ]
    stored = await pool.fetchval("SELECT string_agg(data::text, '') FROM events")
    logs = capfd.readouterr()
    for text in [*reads, stored, logs.out, logs.err]:
        assert VALUE not in text
    assert "[secret:TELEGRAM_TOKEN]" in logs.err  # the failure was logged, redacted
    failure = next(
        json.loads(line)
        for line in logs.err.splitlines()
        if line.startswith("{") and '"run attempt failed"' in line
    )
    assert failure["run_id"] == failed["id"]
    assert failure["task_id"] == failing["id"]
    assert failure["step_id"] == "send"
    assert failure["worker"].startswith("worker-")
