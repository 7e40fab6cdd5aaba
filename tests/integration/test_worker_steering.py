"""Steering runs through the API (cancel, approve, reject) and the pipeline's own branching."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.tools_servers.step_tool import StepTool
from tests.workers import (
    AUTH,
    create_task,
    get_run,
    register_tool,
    run_events,
    run_in,
    run_now,
    run_to_end,
    running_workers,
)

MCP_SCRIPT = Path(__file__).parent.parent / "tools_servers" / "mcp_echo_server.py"

ECHO_AFTER_APPROVAL = [
    {
        "id": "ask",
        "uses": "orchestrator.request_approval",
        "with": {"message": "Send to ${params.who}?", "data": ["a", "b", "c"]},
    },
    {
        "id": "send",
        "uses": "debug.echo",
        "if": "steps.ask.status == 'approved'",
        "with": {"items": "${steps.ask.approved_items}", "by": "${steps.ask.by}"},
    },
    {"id": "report", "uses": "debug.echo", "with": {"decision": "${steps.ask.status}"}},
]


def steps_of(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in run["steps"]}


async def test_canceling_a_queued_run_means_it_never_runs(
    client: httpx.AsyncClient, database_url: str, redis_url: str, tool: tuple[StepTool, str]
) -> None:
    server, base_url = tool
    await register_tool(client, "test.ok", f"{base_url}/ok")
    task = await create_task(client, [{"id": "only", "uses": "test.ok"}])
    run_id = await run_now(client, task["id"])

    canceled = await client.post(f"/runs/{run_id}/cancel", headers=AUTH)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    again = await client.post(f"/runs/{run_id}/cancel", headers=AUTH)
    assert again.status_code == 409, again.text

    other = await run_now(client, task["id"])
    async with running_workers(database_url, redis_url):
        assert (await run_to_end(client, other))["status"] == "succeeded"
    assert (await get_run(client, run_id))["status"] == "canceled"
    assert server.count(f"{run_id}:only") == 0


async def test_canceling_a_running_run_stops_it_at_the_next_step_boundary(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
) -> None:
    server, base_url = tool
    await register_tool(client, "test.wait", f"{base_url}/gate/cancel")
    await register_tool(client, "test.ok", f"{base_url}/ok")
    task = await create_task(
        client, [{"id": "slow", "uses": "test.wait"}, {"id": "next", "uses": "test.ok"}]
    )
    async with running_workers(database_url, redis_url):
        run_id = await run_now(client, task["id"])
        await server.wait_entered("cancel")
        response = await client.post(f"/runs/{run_id}/cancel", headers=AUTH)
        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["cancel_requested"]) == (
            "running",
            True,
        )
        server.gate("cancel").opened.set()
        run = await run_to_end(client, run_id)

    assert run["status"] == "canceled", run
    assert steps_of(run)["slow"]["status"] == "succeeded"
    assert "next" not in steps_of(run)
    assert server.count(f"{run_id}:next") == 0
    types = [e["type"] for e in await run_events(pool, run_id)]
    assert types[-3:] == ["run.cancel_requested", "run.step_succeeded", "run.canceled"]
    assert await pool.fetchval("SELECT count(*) FROM due_work") == 0


async def test_canceling_a_run_abandons_its_mcp_tool_call_in_flight(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    # MCP can cancel a call (the SDK tells the server); an HTTP POST can't be taken back.
    body = {
        "address": "echo.slow",
        "transport": "mcp",
        "command": [sys.executable, str(MCP_SCRIPT)],
        "timeout_seconds": 60,
    }
    registered = await client.post("/tools", json=body, headers=AUTH)
    assert registered.status_code == 201, registered.text
    task = await create_task(
        client,
        [
            {"id": "slow", "uses": "echo.slow", "with": {"seconds": 30}},
            {"id": "next", "uses": "debug.echo", "with": {}},
        ],
    )
    async with running_workers(database_url, redis_url):
        run_id = await run_now(client, task["id"])
        await run_in(client, run_id, ("running",))
        await asyncio.sleep(1.0)  # the MCP server starts and gets the call
        asked = time.monotonic()
        response = await client.post(f"/runs/{run_id}/cancel", headers=AUTH)
        assert response.status_code == 200, response.text
        run = await run_to_end(client, run_id, within=20.0)
        # well before the 30 s the tool would have taken
        assert time.monotonic() - asked < 10

    assert run["status"] == "canceled", run
    slow = steps_of(run)["slow"]
    assert slow["status"] == "failed"
    assert "canceled on request" in slow["error"]
    assert "next" not in steps_of(run)
    types = [e["type"] for e in await run_events(pool, run_id)]
    assert types[-3:] == ["run.cancel_requested", "run.step_failed", "run.canceled"]
    assert await pool.fetchval("SELECT count(*) FROM due_work") == 0


async def test_an_approved_run_resumes_with_the_approved_items(
    client: httpx.AsyncClient, database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    task = await create_task(client, ECHO_AFTER_APPROVAL)
    async with running_workers(database_url, redis_url):
        run_id = await run_now(client, task["id"])
        parked = await run_in(client, run_id, ("awaiting_approval",))
        assert parked["approval"]["message"] == "Send to Ana?"
        assert parked["approval"]["data"] == ["a", "b", "c"]
        assert await pool.fetchval("SELECT count(*) FROM due_work") == 0

        body = {"comment": "only these", "approved_items": ["a", "c"]}
        response = await client.post(f"/runs/{run_id}/approve", json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        run = await run_to_end(client, run_id)

    assert run["status"] == "succeeded", run
    steps = steps_of(run)
    assert steps["ask"]["output"]["comment"] == "only these"
    assert steps["send"]["output"] == {"items": ["a", "c"], "by": "admin"}
    assert steps["report"]["output"] == {"decision": "approved"}
    assert run["approval"]["status"] == "approved"
    again = await client.post(f"/runs/{run_id}/approve", headers=AUTH)
    assert again.status_code == 409, again.text


async def test_a_rejected_run_resumes_and_sees_the_rejection(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    task = await create_task(client, ECHO_AFTER_APPROVAL)
    async with running_workers(database_url, redis_url):
        run_id = await run_now(client, task["id"])
        early = await client.post(f"/runs/{run_id}/approve", headers=AUTH)
        await run_in(client, run_id, ("awaiting_approval",))
        response = await client.post(f"/runs/{run_id}/reject", json={"comment": "no"}, headers=AUTH)
        assert response.status_code == 200, response.text
        run = await run_to_end(client, run_id)

    assert early.status_code == 409, early.text
    assert run["status"] == "succeeded", run
    steps = steps_of(run)
    assert steps["ask"]["output"]["status"] == "rejected"
    assert steps["send"]["status"] == "skipped"
    assert steps["report"]["output"] == {"decision": "rejected"}


async def test_an_approval_that_times_out_takes_its_on_timeout_decision(
    client: httpx.AsyncClient, database_url: str, redis_url: str
) -> None:
    pipeline = [
        {
            "id": "ask",
            "uses": "orchestrator.request_approval",
            "with": {
                "message": "ok?",
                "data": [1],
                "timeout_seconds": 0.3,
                "on_timeout": "approve",
            },
        },
        {"id": "report", "uses": "debug.echo", "with": {"decision": "${steps.ask}"}},
    ]
    task = await create_task(client, pipeline)
    async with running_workers(database_url, redis_url):
        run = await run_to_end(client, await run_now(client, task["id"]))

    assert run["status"] == "succeeded", run
    decision = steps_of(run)["report"]["output"]["decision"]
    assert (decision["status"], decision["expired"], decision["approved_items"]) == (
        "approved",
        True,
        [1],
    )


async def test_on_error_continue_and_a_false_if_let_the_run_go_on(
    client: httpx.AsyncClient, database_url: str, redis_url: str, tool: tuple[StepTool, str]
) -> None:
    server, base_url = tool
    server.failing = True
    await register_tool(client, "test.flaky", f"{base_url}/flaky")
    pipeline: list[dict[str, Any]] = [
        {"id": "try", "uses": "test.flaky", "on_error": "continue"},
        {"id": "never", "uses": "debug.echo", "if": "params.n > `5`", "with": {"x": 1}},
        {"id": "last", "uses": "debug.echo", "with": {"seen": "${steps.try.error}"}},
    ]
    task = await create_task(client, pipeline, max_retries=0)
    async with running_workers(database_url, redis_url):
        run = await run_to_end(client, await run_now(client, task["id"]))

    assert (run["status"], run["attempt"]) == ("succeeded", 1), run
    steps = steps_of(run)
    assert (steps["try"]["status"], steps["try"]["continued"]) == ("failed", True)
    assert "HTTP 500" in steps["try"]["error"]
    assert (steps["never"]["status"], steps["never"]["condition"]) == ("skipped", "params.n > `5`")
    assert "HTTP 500" in steps["last"]["output"]["seen"]
    assert server.count(f"{run['id']}:try") == 1


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (
            {
                "id": "bad",
                "uses": "orchestrator.publish_event",
                "with": {"topic": "${params.who} x"},
            },
            "input.topic",
        ),
        # a number where the message goes: only known once rendered (a literal input that
        # breaks the schema is refused when the task is created)
        (
            {
                "id": "bad",
                "uses": "orchestrator.request_approval",
                "with": {"message": "${params.n}", "data": [1]},
            },
            "message",
        ),
    ],
)
async def test_builtin_steps_check_their_rendered_input_before_acting(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    step: dict[str, Any],
    reason: str,
) -> None:
    task = await create_task(client, [step], max_retries=0)
    async with running_workers(database_url, redis_url):
        run = await run_to_end(client, await run_now(client, task["id"]))
    assert run["status"] == "dead", run
    assert reason in steps_of(run)["bad"]["error"]
    published = "SELECT count(*) FROM events WHERE type IN ('event.received', 'approval.requested')"
    assert await pool.fetchval(published) == 0
