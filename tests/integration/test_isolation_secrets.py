"""Issue 18, finding 10: secrets are owned. An agent's secret serves its own runs only; the
admin's serve the agents the admin names; secrets stored before owners existed stay shared."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from domain.envelope import EventMeta
from domain.events import SecretStored, secret_stream
from projections.registry import inline_projections
from services.secrets.box import SecretBox
from services.store.events import StreamAppend, append_in_transaction
from tests.ui_client import agent_token
from tests.workers import AUTH, FAST, api_client, run_to_end, running_workers

KEY = os.urandom(32)
SCOPES = ["tasks:read", "tasks:write", "runs:read", "events:read", "secrets:read", "secrets:write"]
WORKERS = dataclasses.replace(FAST, secret_key=KEY)


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url, secret_key=KEY) as test_client:
        yield test_client


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _store(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, **body: Any
) -> httpx.Response:
    secret = {"name": name, "value": f"value-of-{name}-7c1d", "allowed_tools": ["debug.echo"]}
    return await client.post("/secrets", json={**secret, **body}, headers=headers)


async def _use(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> dict[str, Any]:
    """A run of the caller's that sends secret ``name`` to debug.echo, run to its end."""
    body = {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "max_retries": 0,
        "payload": {
            "pipeline": [
                {"id": "use", "uses": "debug.echo", "with": {"token": f"${{secrets.{name}}}"}}
            ]
        },
    }
    task = await client.post("/tasks", json=body, headers=headers)
    assert task.status_code == 201, task.text
    queued = await client.post(f"/tasks/{task.json()['id']}/run_now", headers=headers)
    assert queued.status_code == 202, queued.text
    run = await run_to_end(client, queued.json()["run_id"])
    assert f"value-of-{name}" not in str(run)
    return run


async def _names(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    listed = await client.get("/secrets", headers=headers)
    assert listed.status_code == 200, listed.text
    assert all("value" not in item for item in listed.json()["items"])
    return [item["name"] for item in listed.json()["items"]]


async def test_an_agent_uses_its_own_secrets_and_those_the_admin_shares_with_it(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    a_id, a_token = await agent_token(client, "agent-a", SCOPES)
    b_id, b_token = await agent_token(client, "agent-b", SCOPES)
    a, b = _as(a_token), _as(b_token)
    mine = await _store(client, a, "A_TOKEN")
    assert mine.status_code == 201, mine.text
    assert mine.json()["owner"] == a_id
    rotated = await _store(client, a, "A_TOKEN", value="rotated-value-of-A_TOKEN")
    assert rotated.status_code == 200, rotated.text
    # only the admin shares; another agent neither takes over nor deletes A's name
    sharing = await _store(client, a, "A_SHARED", agents=["*"])
    assert sharing.status_code == 403, sharing.text
    assert sharing.json()["errors"][0]["field"] == "agents"
    taken = await _store(client, b, "A_TOKEN")
    assert taken.status_code == 409, taken.text
    assert taken.json()["errors"][0]["field"] == "name"
    assert (await client.delete("/secrets/A_TOKEN", headers=b)).status_code == 404
    # the admin's secrets: nobody else's unless named
    assert (await _store(client, AUTH, "ADMIN_ONLY")).status_code == 201
    assert (await _store(client, AUTH, "FOR_B", agents=[b_id])).status_code == 201

    assert await _names(client, a) == ["A_TOKEN"]
    assert await _names(client, b) == ["FOR_B"]
    everything = (await client.get("/secrets", headers=AUTH)).json()["items"]
    assert {(s["name"], s["owner"], tuple(s["agents"])) for s in everything} == {
        ("A_TOKEN", a_id, ()),
        ("ADMIN_ONLY", "admin", ()),
        ("FOR_B", "admin", (b_id,)),
    }
    # the secret's log is its owner's (GET /events follows domain/ownership.py)
    for headers, count in ((a, 2), (b, 0)):
        read = await client.get("/events?stream=secret-A_TOKEN", headers=headers)
        assert len(read.json()["items"]) == count, read.text

    async with running_workers(database_url, redis_url, config=WORKERS):
        own = await _use(client, a, "A_TOKEN")
        shared = await _use(client, b, "FOR_B")
        stolen = await _use(client, b, "A_TOKEN")
        private = await _use(client, b, "ADMIN_ONLY")
        not_shared = await _use(client, a, "FOR_B")
    assert own["status"] == "succeeded", own
    assert own["steps"][0]["output"] == {"token": "[secret:A_TOKEN]"}
    assert shared["status"] == "succeeded", shared
    for refused, name, owner in (
        (stolen, "A_TOKEN", b_id),
        (private, "ADMIN_ONLY", b_id),
        (not_shared, "FOR_B", a_id),
    ):
        assert refused["status"] == "dead", refused
        error = refused["steps"][0]["error"]
        assert f"secret {name!r} is not {owner}'s and not shared with it" in error

    assert (await client.delete("/secrets/A_TOKEN", headers=a)).status_code == 204
    assert await _names(client, a) == []
    # a deleted name stays its owner's
    assert (await _store(client, b, "A_TOKEN")).status_code == 409


async def test_secrets_stored_before_owners_existed_stay_shared_until_the_admin_narrows(
    client: httpx.AsyncClient, pool: asyncpg.Pool, database_url: str, redis_url: str
) -> None:
    _, b_token = await agent_token(client, "agent-b", SCOPES)
    b = _as(b_token)
    # secret.stored as recorded before this change: no owner, no agents
    sealed = SecretBox(KEY).seal("LEGACY", "value-of-LEGACY")
    legacy = SecretStored(name="LEGACY", ciphertext=sealed, allowed_tools=("debug.echo",))
    append = StreamAppend(secret_stream("LEGACY"), [legacy], expected_version=0)
    meta = EventMeta(actor="admin", correlation_id="legacy")
    async with pool.acquire() as conn, conn.transaction():
        await append_in_transaction(conn, [append], meta, inline_projections())
    assert await _names(client, b) == ["LEGACY"]
    async with running_workers(database_url, redis_url, config=WORKERS):
        assert (await _use(client, b, "LEGACY"))["status"] == "succeeded"
        # the admin narrows it by storing it again, naming nobody
        assert (await _store(client, AUTH, "LEGACY")).status_code == 200
        assert (await _use(client, b, "LEGACY"))["status"] == "dead"
    assert await _names(client, b) == []


async def test_the_admin_shares_a_secret_only_with_agents_that_exist(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    b_id, _ = await agent_token(client, "agent-b", SCOPES)
    refused = await _store(client, AUTH, "FOR_NOBODY", agents=[b_id, "not-an-agent", "admin"])
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["agents[1]", "agents[2]"]
    assert "not-an-agent" in refused.json()["detail"]
    stored = await pool.fetchval("SELECT count(*) FROM events WHERE type = 'secret.stored'")
    assert stored == 0
    assert (await _store(client, AUTH, "FOR_ALL", agents=["*"])).status_code == 201
    assert (await _store(client, AUTH, "FOR_B", agents=[b_id])).status_code == 201
