"""Issue 20: appends run concurrently (2 processes, 16 appenders, long and rolled-back
transactions), and every reader — the relay, `events tail`'s follower, a GET /events pager —
sees every committed event exactly once, in the same order, and never an aborted one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import msgspec
import pytest
import redis.asyncio as redis

from domain.envelope import EventMeta
from domain.events import EventReceived
from projections.registry import inline_projections
from services.health.report import report
from services.relay.service import Relay, RelayConfig
from services.runtime.embedded import ensure_database, with_database
from services.store.events import StreamAppend, append_in_transaction
from services.store.order import START
from services.store.read import read_page
from services.store.tail import follow_stored
from tests.integration import concurrent_appender
from tests.postgres_server import PostgresServer, migrated_database
from tests.workers import ADMIN, api_client

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}

APPENDERS_PER_PROCESS, TRANSACTIONS = 8, 60


def _event_id(data: bytes | str) -> str:
    return str(json.loads(data)["event_id"])


async def _other_process(url: str) -> dict[str, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.concurrent_appender",
        url,
        "2",
        str(APPENDERS_PER_PROCESS),
        str(TRANSACTIONS),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return msgspec.json.decode(out, type=dict[str, list[str]])


async def _tail(conn: asyncpg.Connection, seen: list[str], done: asyncio.Event) -> None:
    async with contextlib.aclosing(follow_stored(conn)) as batches:
        async for batch in batches:
            seen += [_event_id(bytes(e.data)) for e in batch]
            if done.is_set():
                return


async def _pager(client: httpx.AsyncClient, seen: list[str], done: asyncio.Event) -> None:
    after = "0"
    while True:
        response = await client.get(
            "/events", params={"after": after, "limit": 7}, headers=ADMIN_HEADERS
        )
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["data"]["event_id"] for item in page["items"]]
        if page["items"]:
            after = page["items"][-1]["cursor"]
        if page["next"] is None:
            if done.is_set():
                return
            await asyncio.sleep(0.02)


async def _wait_for(seen: list[str], total: int) -> None:
    while len(seen) < total:  # noqa: ASYNC110 - the readers are plain tasks filling lists
        await asyncio.sleep(0.05)


@pytest.mark.timeout(300)
async def test_every_reader_sees_every_committed_event_once_in_one_order(
    own_database_url: str, redis_url: str
) -> None:
    # Its own server: its long transactions (1.5 s) once held back other tests' readers of the
    # shared one, when the log's horizon was the server's; its load stays off it too.
    async with api_client(own_database_url, redis_url) as client:
        await _every_reader_sees_every_committed_event(own_database_url, redis_url, client)


async def _every_reader_sees_every_committed_event(
    database_url: str, redis_url: str, client: httpx.AsyncClient
) -> None:
    stream = f"conc:{uuid.uuid4().hex}"
    rclient = redis.Redis.from_url(redis_url)
    relay, stop = Relay(database_url, rclient, RelayConfig(stream=stream)), asyncio.Event()
    tailed, paged, done = [], [], asyncio.Event()
    tail_conn = await asyncpg.connect(database_url)
    readers = [
        asyncio.create_task(relay.run(stop)),
        asyncio.create_task(_tail(tail_conn, tailed, done)),
        asyncio.create_task(_pager(client, paged, done)),
    ]
    try:
        mine, theirs = await asyncio.gather(
            concurrent_appender.run(database_url, 1, APPENDERS_PER_PROCESS, TRANSACTIONS),
            _other_process(database_url),
        )
        committed = set(mine["committed"]) | set(theirs["committed"])
        aborted = set(mine["aborted"]) | set(theirs["aborted"])
        assert aborted
        assert committed
        try:
            waits = (_wait_for(tailed, len(committed)), _wait_for(paged, len(committed)))
            await asyncio.wait_for(asyncio.gather(*waits), 60)
        except TimeoutError:
            if readers[2].done():
                readers[2].result()
            missing = committed - set(tailed)
            raise AssertionError(
                f"tail {len(tailed)} pager {len(paged)} of {len(committed)};"
                f" extra {len(set(tailed) - committed)}, missing {len(missing)}"
            ) from None
        done.set()
        for _ in range(600):
            relayed = [_event_id(f[b"data"]) for _, f in await rclient.xrange(stream)]
            if len(relayed) >= len(committed):
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        done.set()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await tail_conn.close()
        await rclient.delete(stream)
        await rclient.aclose()
    for seen in (tailed, paged, relayed):
        assert len(seen) == len(set(seen)) == len(committed)  # exactly once
        assert set(seen) == committed  # every committed one, never an aborted one
    assert tailed == paged == relayed  # one order


@pytest.fixture
async def own_database_url(owned_postgres: PostgresServer) -> str:
    """A migrated database on a server of the test's own, for the tests that hold
    transactions open: they stay off the server the other tests share (one also needs a
    second database beside its own)."""
    return await migrated_database(owned_postgres)


@pytest.fixture
async def own_pool(own_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on ``own_database_url``."""
    async with asyncpg.create_pool(own_database_url, min_size=1, max_size=4) as own:
        yield own


@pytest.mark.timeout(180)
async def test_readers_wait_for_a_transaction_held_open_and_health_names_it(
    own_pool: asyncpg.Pool,
) -> None:
    pool = own_pool
    holder = await pool.acquire()
    tx = holder.transaction()
    await tx.start()
    await holder.execute("SELECT pg_current_xact_id()")  # it has written: it holds the horizon
    pid = await holder.fetchval("SELECT pg_backend_pid()")
    meta = EventMeta(actor="t", correlation_id="c")
    async with pool.acquire() as conn, conn.transaction():
        event = EventReceived(event_id="after-holder", topic="t", payload={})
        await append_in_transaction(conn, [StreamAppend("s", [event])], meta, inline_projections())
    try:
        await asyncio.sleep(30)
        async with pool.acquire() as conn:
            page = await read_page(conn, after=START, limit=10)
        assert page.events == []  # committed, but not yet readable:
        assert page.held_back
        health = await report(pool, None)
        horizon = health.components["event_horizon"]
        assert horizon.status == "degraded"
        assert horizon.numbers["pid"] == pid
        assert horizon.numbers["age_seconds"] >= 30
        assert f"pid {pid}" in str(horizon.detail)
    finally:
        await tx.rollback()
        await pool.release(holder)
    async with pool.acquire() as conn:
        page = await read_page(conn, after=START, limit=10)
    assert [_event_id(bytes(e.data)) for e in page.events] == ["after-holder"]


async def test_a_transaction_held_open_in_another_database_holds_no_reader_back(
    owned_postgres: PostgresServer, own_pool: asyncpg.Pool
) -> None:
    """Another database of the server (another application's, say) cannot write this log, so
    its open transaction neither holds the horizon nor is named by /health."""
    elsewhere = with_database(owned_postgres.url, "elsewhere")
    await ensure_database(elsewhere)
    holder = await asyncpg.connect(elsewhere)
    tx = holder.transaction()
    await tx.start()
    await holder.execute("SELECT pg_current_xact_id()")  # it has written: it has an id
    try:
        meta = EventMeta(actor="t", correlation_id="c")
        async with own_pool.acquire() as conn, conn.transaction():
            event = EventReceived(event_id="beside-elsewhere", topic="t", payload={})
            await append_in_transaction(
                conn, [StreamAppend("s", [event])], meta, inline_projections()
            )
        async with own_pool.acquire() as conn:
            # The holder's id is below the append's: a server-wide horizon would hold it back.
            assert await conn.fetchval(
                "SELECT pg_snapshot_xmin(pg_current_snapshot()) <= $1::xid8",
                int(await holder.fetchval("SELECT pg_current_xact_id()::text")),
            )
            page = await read_page(conn, after=START, limit=10)
        assert [_event_id(bytes(e.data)) for e in page.events] == ["beside-elsewhere"]
        assert not page.held_back
        health = await report(own_pool, None)
        assert health.components["event_horizon"].status == "ok"
    finally:
        await tx.rollback()
        await holder.close()
