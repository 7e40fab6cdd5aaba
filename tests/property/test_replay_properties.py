"""Replay reproduces the relayed stream: for any position range, the same entries in order."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis
from hypothesis import given, settings
from hypothesis import strategies as st

from services.relay.replay import JsonlSink, RedisSink, replay_events
from services.relay.service import RelayConfig
from services.runtime.embedded import with_database
from services.store.audit import EventFilter
from services.store.order import Cursor
from tests.relay_support import (
    append_received,
    relaying,
    stored_positions,
    stream_entries,
    stream_top,
    unique_stream,
)
from tests.support import fresh_database
from tests.workers import eventually

EVENTS = 400


@dataclass
class Relayed:
    """A log of EVENTS events and the stream the relay made of it."""

    conn: asyncpg.Connection
    client: redis.Redis
    stream: str
    positions: list[int]


@pytest.fixture(scope="module")
async def relayed(
    postgres_url: str, template_database: str, redis_url: str
) -> AsyncIterator[Relayed]:
    async with fresh_database(postgres_url, template_database) as conn:
        name = await conn.fetchval("SELECT current_database()")
        database_url = with_database(postgres_url, name)
        async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
            await asyncio.gather(
                *(append_received(pool, EVENTS // 4, per_command=n) for n in (1, 3, 7, 10))
            )
            positions = await stored_positions(pool)
        stream = unique_stream()
        client = redis.Redis.from_url(redis_url)
        async with relaying(database_url, redis_url, RelayConfig(stream=stream, batch=37)):
            await eventually(lambda: _at(client, stream, positions[-1]))
        try:
            yield Relayed(conn, client, stream, positions)
        finally:
            await client.delete(stream)
            await client.aclose()


async def _at(client: redis.Redis, stream: str, position: int) -> bool:
    return await stream_top(client, stream) == position


async def _cursors(conn: Any) -> list[Cursor]:
    rows = await conn.fetch("SELECT txid, position FROM events ORDER BY txid, position")
    return [Cursor(int(r["txid"]), r["position"]) for r in rows]


async def _range(conn: Any, first: int, last: int) -> tuple[EventFilter, str, str]:
    """The first..last events of the log's order (1-based, inclusive; last may be past the
    end), as a filter and as the stream ids bounding the relayed range."""
    cursors = await _cursors(conn)
    low, high = cursors[min(first, len(cursors)) - 1], cursors[min(last, len(cursors)) - 1]
    if first > len(cursors):  # an empty range past the end
        return EventFilter(after=cursors[-1]), "+", "+"
    return EventFilter(first=low, last=high), low.entry_id, high.entry_id


@settings(max_examples=25, deadline=None, database=None)
@given(data=st.data())
async def test_replay_to_redis_equals_the_relayed_range(relayed: Relayed, data: Any) -> None:
    span = st.integers(1, relayed.positions[-1] + 5)
    first, last = sorted((data.draw(span), data.draw(span)))
    batch = data.draw(st.integers(1, 60))
    target = unique_stream()
    try:
        sink = RedisSink(relayed.client, target)
        where, low, high = await _range(relayed.conn, first, last)
        count = await replay_events(relayed.conn, where, sink, batch=batch)
        original = await relayed.client.xrange(relayed.stream, min=low, max=high)
        if low == "+":
            original = []
        assert await stream_entries(relayed.client, target) == original
        assert count == len(original)
    finally:
        await relayed.client.delete(target)


@settings(max_examples=15, deadline=None, database=None)
@given(data=st.data())
async def test_replay_to_json_lines_equals_the_relayed_range(relayed: Relayed, data: Any) -> None:
    span = st.integers(1, relayed.positions[-1])
    first, last = sorted((data.draw(span), data.draw(span)))
    output = io.BytesIO()
    where, low, high = await _range(relayed.conn, first, last)
    await replay_events(relayed.conn, where, JsonlSink(output), batch=50)
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    original = await relayed.client.xrange(relayed.stream, min=low, max=high)
    assert [line["position"] for line in lines] == [int(f[b"position"]) for _, f in original]
    for line, (_, fields) in zip(lines, original, strict=True):
        assert line["data"] == json.loads(fields[b"data"])
        assert line["meta"] == json.loads(fields[b"meta"])
        assert line["type"] == fields[b"type"].decode()


async def test_an_interrupted_replay_run_again_completes_without_duplicates(
    relayed: Relayed,
) -> None:
    target = unique_stream()
    try:
        sink = RedisSink(relayed.client, target)
        where, _, _ = await _range(relayed.conn, 1, 100)
        await replay_events(relayed.conn, where, sink)  # the first part only
        await replay_events(relayed.conn, EventFilter(), RedisSink(relayed.client, target))
        assert await stream_entries(relayed.client, target) == await stream_entries(
            relayed.client, relayed.stream
        )
    finally:
        await relayed.client.delete(target)
