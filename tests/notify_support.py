"""Helpers for notifier tests: agents with webhooks, runs they own, and a running notifier."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import redis.asyncio as redis

from domain.envelope import EventMeta
from domain.events import (
    AgentCreated,
    Event,
    RunDead,
    RunQueued,
    RunSucceeded,
    agent_stream,
    run_stream,
)
from services.notify.service import Notifier, NotifierConfig
from services.store.events import StreamAppend, append_in_transaction, read_stream
from tests.relay_support import PROJECTIONS

KEY = b"webhook-key-for-tests-0123456789"


async def _append(pool: asyncpg.Pool, stream: str, events: list[Event], actor: str) -> int:
    meta = EventMeta(actor=actor, correlation_id=str(uuid.uuid4()))
    async with pool.acquire() as conn, conn.transaction():
        result = await append_in_transaction(
            conn, [StreamAppend(stream, events)], meta, PROJECTIONS
        )
    return result.last_position


async def create_agent(
    pool: asyncpg.Pool, url: str, notify_events: tuple[str, ...] | None = None
) -> str:
    """An agent whose webhook is ``url``; its id."""
    agent_id = str(uuid.uuid4())
    event = AgentCreated(
        agent_id=agent_id,
        name=f"agent {agent_id}",
        scopes=("runs:read",),
        webhook_url=url,
        notify_events=notify_events,
    )
    await _append(pool, agent_stream(agent_id), [event], "admin")
    return agent_id


async def queue_run(pool: asyncpg.Pool, owner: str) -> str:
    """A run owned by ``owner`` (queued, never executed); its id."""
    run_id = str(uuid.uuid4())
    now = await pool.fetchval("SELECT now()")
    queued = RunQueued(
        run_id=run_id, task_id=str(uuid.uuid4()), owner=owner, scheduled_for=now, run_at=now
    )
    await _append(pool, run_stream(run_id), [queued], "timer")
    return run_id


async def finish_run(pool: asyncpg.Pool, run_id: str, *, dead: bool = False) -> int:
    """Record the run's end; the position of that event."""
    event: Event = (
        RunDead(run_id=run_id, attempt=1, error="broke")
        if dead
        else RunSucceeded(run_id=run_id, attempt=1)
    )
    return await _append(pool, run_stream(run_id), [event], "worker")


async def delivery_records(pool: asyncpg.Pool, agent_id: str, position: int) -> list[Any]:
    """The delivery's events as (type, event), in order."""
    async with pool.acquire() as conn:
        envelopes = await read_stream(conn, f"webhook-{agent_id}-{position}")
    return [(e.type, e.event, e.position) for e in envelopes]


@contextlib.asynccontextmanager
async def notifying(
    pool: asyncpg.Pool, redis_url: str, config: NotifierConfig
) -> AsyncIterator[Notifier]:
    """A notifier running in this event loop until the block ends."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    notifier = Notifier(pool, client, KEY, PROJECTIONS, config)
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop))
    try:
        yield notifier
    finally:
        stop.set()
        await task
        await client.aclose()
