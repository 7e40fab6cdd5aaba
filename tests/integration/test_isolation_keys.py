"""Issue 18, finding 6: dedupe and concurrency keys are each agent's own."""

from __future__ import annotations

from typing import Any

import httpx

from tests.tools_servers.step_tool import StepTool
from tests.ui_client import agent_token
from tests.workers import (
    AUTH,
    register_tool,
    run_to_end,
    running_workers,
)

SCOPES = ["tasks:read", "tasks:write", "runs:read"]
ECHO = [{"id": "echo", "uses": "debug.echo", "with": {"x": 1}}]


async def _task(client: httpx.AsyncClient, token: str, pipeline: list[Any], **fields: Any) -> Any:
    body = {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": pipeline},
        **fields,
    }
    return await client.post("/tasks", json=body, headers={"Authorization": f"Bearer {token}"})


async def _run(client: httpx.AsyncClient, token: str, pipeline: list[Any], **fields: Any) -> str:
    created = await _task(client, token, pipeline, **fields)
    assert created.status_code == 201, created.text
    queued = await client.post(
        f"/tasks/{created.json()['id']}/run_now", headers={"Authorization": f"Bearer {token}"}
    )
    assert queued.status_code == 202, queued.text
    return str(queued.json()["run_id"])


async def test_another_agents_keys_neither_deduplicate_nor_delay_my_runs(
    client: httpx.AsyncClient, database_url: str, redis_url: str, tool: tuple[StepTool, str]
) -> None:
    server, base_url = tool
    await register_tool(client, "test.hold", f"{base_url}/gate/hold")
    _, a = await agent_token(client, "agent-a", SCOPES)
    _, b = await agent_token(client, "agent-b", SCOPES)
    dedupe = {"dedupe_key": "nightly-report", "dedupe_window_seconds": 3600}
    async with running_workers(database_url, redis_url):
        # B's run holds "billing-export" until the gate opens; B ran "nightly-report".
        holder = await _run(
            client, b, [{"id": "hold", "uses": "test.hold"}], concurrency_key="billing-export"
        )
        await server.wait_entered("hold")
        assert (await run_to_end(client, await _run(client, b, ECHO, **dedupe)))["status"] == (
            "succeeded"
        )
        # A's runs with the same key texts go ahead at once, B's key still held.
        mine = await run_to_end(
            client, await _run(client, a, ECHO, concurrency_key="billing-export")
        )
        assert mine["status"] == "succeeded"
        first = await run_to_end(client, await _run(client, a, ECHO, **dedupe))
        assert first["status"] == "succeeded"
        # A's own key still deduplicates A's runs, naming A's run.
        second = await run_to_end(client, await _run(client, a, ECHO, **dedupe))
        assert second["status"] == "deduplicated"
        assert first["id"] in second["error"]
        assert "/" not in second["error"].split("dedupe key", 1)[1]  # the key as A gave it
        server.open_all()
        assert (await run_to_end(client, holder))["status"] == "succeeded"


async def test_only_the_admin_sets_a_key_shared_across_agents(client: httpx.AsyncClient) -> None:
    _, a = await agent_token(client, "agent-a", SCOPES)
    refused = await _task(client, a, ECHO, concurrency_key="shared:billing")
    assert refused.status_code == 403, refused.text
    assert refused.json()["errors"][0]["field"] == "concurrency_key"
    body = {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "dedupe_key": "shared:nightly",
    }
    assert (await client.post("/tasks", json=body, headers=AUTH)).status_code == 201
