"""Helpers for tests of the events stream: run a relay, append events, read the stream back."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import redis.asyncio as redis

from domain.envelope import EventMeta
from domain.events import EventReceived
from projections.registry import inline_projections
from services.relay.service import Relay, RelayConfig
from services.store.events import StreamAppend, append_in_transaction
from services.store.order import Cursor

PROJECTIONS = inline_projections()


def unique_stream() -> str:
    """A stream key no other test (or engineer) on the shared Redis uses."""
    return f"test-{uuid.uuid4().hex}:events"


@contextlib.asynccontextmanager
async def relaying(database_url: str, redis_url: str, config: RelayConfig) -> AsyncIterator[Relay]:
    """A relay running in this event loop until the block ends."""
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=1)
    relay = Relay(database_url, client, config)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield relay
    finally:
        stop.set()
        await task
        await client.aclose()


async def append_received(pool: asyncpg.Pool, count: int, *, per_command: int = 1) -> None:
    """``count`` event.received events, ``per_command`` to a command."""
    for start in range(0, count, per_command):
        size = min(per_command, count - start)
        events = [
            EventReceived(event_id=str(uuid.uuid4()), topic="test", payload={"i": start + i})
            for i in range(size)
        ]
        meta = EventMeta(actor="tester", correlation_id=str(uuid.uuid4()))
        async with pool.acquire() as conn, conn.transaction():
            await append_in_transaction(
                conn, [StreamAppend(f"topic-test-{uuid.uuid4()}", events)], meta, PROJECTIONS
            )


async def stored_positions(pool: asyncpg.Pool) -> list[int]:
    """Every position in the log, in the log's order (txid, position)."""
    rows = await pool.fetch("SELECT position FROM events ORDER BY txid, position")
    return [row["position"] for row in rows]


async def stream_entries(client: redis.Redis, stream: str) -> list[tuple[bytes, dict[bytes, Any]]]:
    """Every entry of the stream, oldest first."""
    entries: list[tuple[bytes, dict[bytes, Any]]] = []
    start = "-"
    while True:
        chunk: Any = await client.xrange(stream, min=start, max="+", count=2000)
        entries += chunk
        if len(chunk) < 2000:
            return entries
        start = "(" + chunk[-1][0].decode()


async def stream_positions(client: redis.Redis, stream: str) -> list[int]:
    """The position each entry carries, checked against its id, oldest first."""
    positions = []
    for entry_id, fields in await stream_entries(client, stream):
        assert Cursor.from_entry_id(entry_id).position == int(fields[b"position"])
        positions.append(int(fields[b"position"]))
    return positions


async def stream_top(client: redis.Redis, stream: str) -> int:
    """The position of the newest entry (0 when there is none or Redis is away)."""
    try:
        last: Any = await client.xrevrange(stream, count=1)
    except (redis.RedisError, OSError):
        return 0
    return Cursor.from_entry_id(last[0][0]).position if last else 0
