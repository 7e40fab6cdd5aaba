"""Operations: /health per component (the timer's lag shows and recovers), GET /workers with
their leases, and each process's ops port serving /metrics and health."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from projections.registry import inline_projections
from services.health.ops_server import ops_app
from services.timer.service import Timer
from tests.tools_servers.step_tool import StepTool
from tests.workers import (
    AUTH,
    create_task,
    eventually,
    register_tool,
    run_now,
    run_to_end,
    running_workers,
    serve_in_thread,
)


async def health(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/health")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_health_shows_a_stopped_timer_and_its_recovery(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    before = await health(client)
    assert set(before["components"]) == {
        "db",
        "redis",
        "timer",
        "ready_work",
        "relay",
        "workers",
        "event_horizon",
    }
    assert before["components"]["timer"]["status"] == "ok"

    # A one-shot due 20 s ago (inside the grace a late one-shot still gets) and no timer running:
    # the timer's lag is 20 s and growing.
    due = (datetime.now(UTC) - timedelta(seconds=20)).isoformat()
    body = {
        "title": "late",
        "schedule_kind": "once",
        "schedule_expr": due,
        "payload": {"pipeline": [{"id": "e", "uses": "debug.echo"}]},
    }
    assert (await client.post("/tasks", json=body, headers=AUTH)).status_code == 201
    lagging = await health(client)
    assert lagging["components"]["timer"]["status"] == "degraded"
    assert lagging["components"]["timer"]["numbers"]["lag_seconds"] >= 19
    assert lagging["status"] in ("degraded", "failing")

    stop = asyncio.Event()
    timer = asyncio.create_task(Timer(pool, inline_projections()).run(stop))
    try:

        async def recovered() -> bool:
            return (await health(client))["components"]["timer"]["status"] == "ok"

        await eventually(recovered, within=15)
    finally:
        stop.set()
        await timer
    # what it fired is ready work nobody runs: the oldest ready work shows it
    ready = (await health(client))["components"]["ready_work"]
    assert ready["numbers"]["ready"] == 1


async def test_workers_are_listed_with_their_leases(
    client: httpx.AsyncClient, database_url: str, redis_url: str, tool: tuple[StepTool, str]
) -> None:
    server, base_url = tool
    await register_tool(client, "test.wait", f"{base_url}/gate/hold")
    task = await create_task(client, [{"id": "hold", "uses": "test.wait"}])
    async with running_workers(database_url, redis_url, count=2) as workers:
        run_id = await run_now(client, task["id"])
        await server.wait_entered("hold")
        listed = (await client.get("/workers", headers=AUTH)).json()["items"]
        assert {w["name"] for w in listed} == {w.name for w in workers}
        assert all(w["alive"] for w in listed)
        holding = [w for w in listed if w["leased_runs"]]
        assert [w["leased_runs"] for w in holding] == [[run_id]]
        assert (await health(client))["components"]["workers"]["numbers"]["alive"] == 2
        server.gate("hold").opened.set()
        await run_to_end(client, run_id)
    assert (await client.get("/workers", headers=AUTH)).json()["items"] == []  # they left


def test_the_ops_port_serves_metrics_and_health(database_url: str, redis_url: str) -> None:
    app = ops_app(database_url, redis_url, "ordinaut:events")
    with serve_in_thread(app) as base_url, httpx.Client(base_url=base_url) as ops:
        metrics = ops.get("/metrics")
        assert metrics.status_code == 200
        for name in (
            "ordinaut_due_work_ready",
            "ordinaut_workers_alive",
            "ordinaut_timer_lag_seconds_bucket",
            "ordinaut_relay_lag_seconds_bucket",
        ):
            assert name in metrics.text
        assert ops.get("/health/ready").json() == {"status": "ready"}
        assert ops.get("/health").json()["components"]["db"]["status"] == "ok"
        assert ops.get("/health/live").status_code == 200
