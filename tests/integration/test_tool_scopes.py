"""Tool scopes: an agent's pipelines may only use tools within its scopes, checked when a
task is created or changed and again before each step runs (scopes can be revoked)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.tools_servers.step_tool import StepTool
from tests.workers import AUTH, run_to_end, running_workers

API_SCOPES = ["tasks:read", "tasks:write", "runs:read"]
NEVER = {"title": "t", "schedule_kind": "cron", "schedule_expr": "0 0 1 1 *"}


async def agent(
    client: httpx.AsyncClient, name: str, scopes: list[str]
) -> tuple[str, dict[str, str]]:
    created = await client.post("/agents", json={"name": name, "scopes": scopes}, headers=AUTH)
    assert created.status_code == 201, created.text
    agent_id = created.json()["id"]
    token = (await client.post(f"/agents/{agent_id}/tokens", json={}, headers=AUTH)).json()
    return agent_id, {"Authorization": f"Bearer {token['token']}"}


async def register_notify(client: httpx.AsyncClient, base_url: str) -> None:
    body = {
        "address": "notify.send",
        "transport": "http",
        "endpoint": f"{base_url}/ok",
        "scopes": ["notify"],
        "output_schema": {"type": "object"},
    }
    assert (await client.post("/tools", json=body, headers=AUTH)).status_code == 201


def task(pipeline: list[dict[str, Any]]) -> dict[str, Any]:
    return {**NEVER, "payload": {"pipeline": pipeline}}


SEND = {"id": "send", "uses": "notify.send", "with": {"text": "hi"}}


@pytest.mark.parametrize(
    ("scopes", "field"),
    [
        (["tasks:wrte"], "scopes"),  # a typo of an API scope is not a tool scope
        (["Notify Me"], "scopes"),
        ([], "scopes"),
    ],
)
async def test_agent_scopes_are_api_scopes_or_tool_scopes(
    client: httpx.AsyncClient, scopes: list[str], field: str
) -> None:
    response = await client.post("/agents", json={"name": "a", "scopes": scopes}, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_a_task_may_only_use_tools_within_the_agents_scopes(
    client: httpx.AsyncClient, pool: asyncpg.Pool, tool: tuple[StepTool, str]
) -> None:
    await register_notify(client, tool[1])
    _, plain = await agent(client, "plain", API_SCOPES)
    _, notifier = await agent(client, "notifier", [*API_SCOPES, "notify"])
    before = await pool.fetchval("SELECT count(*) FROM events")

    nested = {
        "id": "each",
        "uses": "pipeline.foreach",
        "with": {"items_path": "params.xs", "body": [SEND]},
    }
    for pipeline, field in (
        ([SEND], "payload.pipeline[0].uses"),
        ([nested], "payload.pipeline[0].with.body[0].uses"),
        (
            [{"id": "p", "uses": "orchestrator.publish_event", "with": {"topic": "t"}}],
            "payload.pipeline[0].uses",
        ),
    ):
        refused = await client.post("/tasks", json=task(pipeline), headers=plain)
        assert refused.status_code == 403, refused.text
        assert refused.json()["errors"][0]["field"] == field
        assert "lacks" in refused.json()["errors"][0]["reason"]
    assert await pool.fetchval("SELECT count(*) FROM events") == before

    allowed = await client.post("/tasks", json=task([SEND]), headers=notifier)
    assert allowed.status_code == 201, allowed.text
    # and a change that brings the tool in is checked like a creation
    echo = await client.post(
        "/tasks", json=task([{"id": "e", "uses": "debug.echo"}]), headers=plain
    )
    changed = await client.patch(
        f"/tasks/{echo.json()['id']}", json={"payload": {"pipeline": [SEND]}}, headers=plain
    )
    assert changed.status_code == 403, changed.text


async def test_revoking_a_tool_scope_stops_the_step_at_run_time(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
) -> None:
    server, base_url = tool
    await register_notify(client, base_url)
    agent_id, token = await agent(client, "notifier", [*API_SCOPES, "notify"])
    created = await client.post("/tasks", json={**task([SEND]), "max_retries": 0}, headers=token)
    task_id = created.json()["id"]

    unchanged = await client.patch(
        f"/agents/{agent_id}", json={"scopes": [*API_SCOPES, "notify"]}, headers=AUTH
    )
    assert unchanged.status_code == 200, unchanged.text
    revoked = await client.patch(f"/agents/{agent_id}", json={"scopes": API_SCOPES}, headers=AUTH)
    assert revoked.json()["scopes"] == sorted(API_SCOPES)
    updates = await pool.fetchval("SELECT count(*) FROM events WHERE type = 'agent.updated'")
    assert updates == 1  # the same scopes again record nothing

    async with running_workers(database_url, redis_url):
        queued = await client.post(f"/tasks/{task_id}/run_now", headers=token)
        run = await run_to_end(client, queued.json()["run_id"])
    assert run["status"] == "dead", run
    assert "needs scope 'notify'" in run["steps"][0]["error"]
    assert server.calls == []

    # API scopes change at once too: without tasks:write the next command is refused
    await client.patch(f"/agents/{agent_id}", json={"scopes": ["tasks:read"]}, headers=AUTH)
    assert (await client.post(f"/tasks/{task_id}/pause", headers=token)).status_code == 403


async def test_a_task_without_steps_is_created_without_the_catalog_and_steps_still_checked(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    _, plain = await agent(client, "plain", API_SCOPES)
    body = {**task([]), "payload": {"params": {"team": "platform"}}}
    created = await client.post("/tasks", json=body, headers=plain)
    assert created.status_code == 201, created.text
    assert created.json()["definition"]["payload"] == {"params": {"team": "platform"}}
    # A step naming a tool nobody registered is still refused, naming the step.
    unknown = await client.post(
        "/tasks", json=task([{"id": "x", "uses": "nobody.registered_this"}]), headers=plain
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["errors"][0]["field"] == "payload.pipeline[0].uses"
