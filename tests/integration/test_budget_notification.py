"""An owner hears that a budget stopped its run: budget.exceeded reaches its webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis.asyncio as redis

from domain.events import BudgetExceeded, RunDead
from domain.webhook_signing import webhook_secret
from services.notify.service import NotifierConfig
from services.relay.service import RelayConfig
from tests.notify_support import KEY, _append, create_agent, notifying, queue_run
from tests.relay_support import relaying, unique_stream
from tests.tools_servers.http_tool_server import serve
from tests.webhook_receiver import WebhookReceiver
from tests.workers import eventually


@pytest.fixture
async def stream(redis_url: str) -> AsyncIterator[str]:
    name = unique_stream()
    yield name
    async with redis.Redis.from_url(redis_url) as client:
        await client.delete(name)


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, str]]:
    app = WebhookReceiver()
    with serve(app, lifespan="off") as base_url:
        yield app, base_url


async def test_budget_exceeded_is_delivered_to_the_owner_by_default(
    pool: asyncpg.Pool,
    database_url: str,
    redis_url: str,
    stream: str,
    receiver: tuple[WebhookReceiver, str],
) -> None:
    app, base = receiver
    owner = await create_agent(pool, f"{base}/ok")  # default notify_events
    app.secrets[owner] = webhook_secret(KEY, owner)
    run_id = await queue_run(pool, owner)
    task_id = await pool.fetchval("SELECT task_id FROM runs WHERE run_id = $1", run_id)
    exceeded = BudgetExceeded(
        run_id=run_id,
        task_id=task_id,
        owner=owner,
        step_id="send",
        tool="paid.send",
        scope="task",
        budget=1.0,
        spent=0.8,
        cost=0.4,
        day="2026-11-29",
    )
    dead = RunDead(run_id=run_id, attempt=1, error="budget exceeded", reason="budget_exceeded")
    await _append(pool, f"run-{run_id}", [exceeded, dead], "worker")
    config = NotifierConfig(stream=stream, start_id="0", timeout_seconds=0.5, block_ms=200)
    async with (
        relaying(database_url, redis_url, RelayConfig(stream=stream, idle_seconds=0.5)),
        notifying(pool, redis_url, config),
    ):
        await eventually(lambda: asyncio.sleep(0, len(app.received) >= 2))

    by_type = {d.body["type"]: d for d in app.received}
    assert set(by_type) == {"budget.exceeded", "run.dead"}
    notice = by_type["budget.exceeded"]
    assert notice.verified
    assert notice.body["agent_id"] == owner
    assert (notice.body["data"]["scope"], notice.body["data"]["budget"]) == ("task", 1.0)
