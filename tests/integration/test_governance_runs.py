"""Governance while runs run: tool rate limits, budgets and quiet hours, with real workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from projections.rebuild import rebuild
from projections.registry import inline_projections
from tests.tools_servers.step_tool import StepTool
from tests.workers import (
    AUTH,
    create_task,
    of_type,
    run_events,
    run_in,
    run_now,
    run_to_end,
    running_workers,
)


async def register(client: httpx.AsyncClient, address: str, endpoint: str, **extra: Any) -> None:
    body = {"address": address, "transport": "http", "endpoint": endpoint, **extra}
    response = await client.post("/tools", json=body, headers=AUTH)
    assert response.status_code == 201, response.text


async def test_a_rate_limited_tool_spreads_its_calls_over_runs_and_workers(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    tool: tuple[StepTool, str],
) -> None:
    step_tool, base_url = tool
    await register(
        client, "limited.ok", f"{base_url}/ok", rate_limit={"calls": 2, "per_seconds": 1}
    )
    pipeline = [{"id": f"call{i}", "uses": "limited.ok", "with": {"i": i}} for i in range(2)]
    task = await create_task(client, pipeline)
    async with running_workers(database_url, redis_url, count=2):
        run_ids = [await run_now(client, task["id"]) for _ in range(4)]
        runs = [await run_to_end(client, run_id, within=30) for run_id in run_ids]

    assert [run["status"] for run in runs] == ["succeeded"] * 4
    started = sorted(call.started for call in step_tool.calls)
    assert len(started) == 8
    # Slots are a second apart for every third call; arrivals add each request's own trip,
    # which varies a lot on a loaded machine, so the check here is half a window.
    gaps = [later - earlier for earlier, later in zip(started, started[2:], strict=False)]
    assert min(gaps) >= 0.5, gaps
    assert started[-1] - started[0] >= 2.5


async def _agent_client(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    body = {"name": "spender", "scopes": ["tasks:read", "tasks:write", "runs:read", "notify"]}
    agent = (await client.post("/agents", json=body, headers=AUTH)).json()
    token = (await client.post(f"/agents/{agent['id']}/tokens", json={}, headers=AUTH)).json()
    return agent["id"], {"Authorization": f"Bearer {token['token']}"}


async def _agent_task(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    pipeline: list[dict[str, Any]],
    **fields: Any,
) -> str:
    body = {
        "title": "costly",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": pipeline},
        **fields,
    }
    response = await client.post("/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_step_over_the_task_budget_kills_the_run_and_tells_the_owner(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
) -> None:
    step_tool, base_url = tool
    await register(client, "paid.ok", f"{base_url}/ok", cost_per_call=0.4)
    agent_id, headers = await _agent_client(client)
    pipeline = [
        {"id": "first", "uses": "paid.ok"},
        {"id": "second", "uses": "paid.ok"},
        {"id": "after", "uses": "debug.echo"},
    ]
    task_id = await _agent_task(client, headers, pipeline, budget_per_day=1.0)
    async with running_workers(database_url, redis_url):
        within = await run_to_end(client, await run_now(client, task_id))
        over_id = await run_now(client, task_id)
        over = await run_to_end(client, over_id)

    assert within["status"] == "succeeded", within
    assert over["status"] == "dead", over
    assert over["attempt"] == 1  # not retried
    assert "budget exceeded" in over["error"]
    assert len(step_tool.calls) == 2  # the third call was never made
    events = await run_events(pool, over_id)
    assert [e["type"] for e in events][-3:] == ["run.step_failed", "budget.exceeded", "run.dead"]
    exceeded = of_type(events, "budget.exceeded")[0]
    assert (exceeded["owner"], exceeded["scope"], exceeded["budget"]) == (agent_id, "task", 1.0)
    assert (exceeded["spent"], exceeded["cost"], exceeded["step_id"]) == (0.8, 0.4, "first")
    assert of_type(events, "run.dead")[0]["reason"] == "budget_exceeded"
    spent_sql = "SELECT scope, subject, day, amount FROM spend ORDER BY scope"
    spent = await pool.fetch(spent_sql)
    assert [(r["scope"], r["subject"], r["amount"]) for r in spent] == [
        ("agent", agent_id, pytest.approx(0.8)),
        ("task", task_id, pytest.approx(0.8)),
    ]
    async with pool.acquire() as conn:  # the spend is the log's: a replay gives it back
        await rebuild(conn, inline_projections().named(["spend"]))
    assert [tuple(r) for r in await pool.fetch(spent_sql)] == [tuple(r) for r in spent]


async def test_a_cost_the_tool_reports_counts_and_an_agent_budget_stops_its_tasks(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
) -> None:
    step_tool, base_url = tool
    await register(client, "metered.call", f"{base_url}/cost")
    agent_id, headers = await _agent_client(client)
    limits = await client.put(
        f"/agents/{agent_id}/limits", json={"budget_per_day": 2.5}, headers=AUTH
    )
    assert limits.status_code == 200, limits.text
    pipeline = [{"id": "spend", "uses": "metered.call", "with": {"cost": 1.5}}]
    task_id = await _agent_task(client, headers, pipeline)
    async with running_workers(database_url, redis_url):
        runs = [await run_to_end(client, await run_now(client, task_id)) for _ in range(3)]

    # 1.5, then 3.0 (the second call could not know its cost before), then refused.
    assert [run["status"] for run in runs] == ["succeeded", "succeeded", "dead"]
    assert runs[1]["steps"][0]["output"]["_cost"] == 1.5
    assert runs[1]["steps"][0]["cost"] == 1.5
    shown = (await client.get(f"/agents/{agent_id}/limits", headers=AUTH)).json()
    assert (shown["budget_per_day"], shown["spent_today"]) == (2.5, 3.0)
    assert len(step_tool.calls) == 2
    exceeded = of_type(await run_events(pool, runs[2]["id"]), "budget.exceeded")[0]
    assert (exceeded["scope"], exceeded["spent"], exceeded["owner"]) == ("agent", 3.0, agent_id)


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M:%S")


async def test_a_notify_step_in_quiet_hours_resumes_when_they_end_and_not_before(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
) -> None:
    step_tool, base_url = tool
    await register(client, "chat.notify", f"{base_url}/ok", scopes=["notify"])
    offset = timedelta(hours=5, minutes=30)  # Asia/Kolkata, all year
    zone_now = datetime.now(UTC) + offset
    end = (zone_now + timedelta(seconds=5)).replace(microsecond=0)
    window = {"start": _clock(zone_now - timedelta(minutes=5)), "end": _clock(end)}
    pipeline = [
        {"id": "prepare", "uses": "debug.echo", "with": {"text": "hello"}},
        {"id": "notify", "uses": "chat.notify", "with": {"text": "${steps.prepare.text}"}},
        {"id": "done", "uses": "debug.echo"},
    ]
    task = await create_task(client, pipeline, timezone="Asia/Kolkata", quiet_hours=[window])
    async with running_workers(database_url, redis_url):
        run_id = await run_now(client, task["id"])
        deferred = await run_in(client, run_id, ("deferred",))
        assert not step_tool.calls  # held back, not sent
        run = await run_to_end(client, run_id)

    until = end - offset
    assert datetime.fromisoformat(deferred["run_at"]) == until
    assert run["status"] == "succeeded", run
    events = await run_events(pool, run_id)
    assert of_type(events, "run.deferred")[0]["step_id"] == "notify"
    assert datetime.fromisoformat(of_type(events, "run.deferred")[0]["until"]) == until
    notified = [e for e in of_type(events, "run.step_succeeded") if e["step_id"] == "notify"]
    assert notified[0]["at"] >= until
    assert len(step_tool.calls) == 1
    assert step_tool.calls[0].input == {"text": "hello"}
    # The step before the window ran once: the resumed run reused its recorded output.
    assert [e["step_id"] for e in of_type(events, "run.step_succeeded")].count("prepare") == 1
    assert [e["type"] for e in events].count("run.started") == 2


async def test_an_agent_s_quiet_hours_hold_back_its_tasks_and_a_deferred_run_can_be_canceled(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    pool: asyncpg.Pool,
    tool: tuple[StepTool, str],
) -> None:
    step_tool, base_url = tool
    await register(client, "chat.notify", f"{base_url}/ok", scopes=["notify"])
    agent_id, headers = await _agent_client(client)
    now = datetime.now(UTC)
    window = {"start": _clock(now - timedelta(minutes=5)), "end": _clock(now + timedelta(hours=1))}
    body = {"quiet_hours": [window], "timezone": "UTC"}
    limits = await client.put(f"/agents/{agent_id}/limits", json=body, headers=AUTH)
    assert limits.status_code == 200, limits.text
    task_id = await _agent_task(client, headers, [{"id": "tell", "uses": "chat.notify"}])
    async with running_workers(database_url, redis_url):
        run_id = await run_now(client, task_id)
        deferred = await run_in(client, run_id, ("deferred",))
        canceled = await client.post(f"/runs/{run_id}/cancel", headers=AUTH)
        assert canceled.status_code == 200, canceled.text
        run = await run_to_end(client, run_id)

    assert datetime.fromisoformat(deferred["run_at"]) > now + timedelta(minutes=59)
    assert run["status"] == "canceled"
    assert not step_tool.calls
    assert await pool.fetchval("SELECT count(*) FROM due_work") == 0
