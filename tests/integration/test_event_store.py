"""The event store against real Postgres: order, concurrency, idempotency, immutability."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid

import asyncpg
import pytest

from domain.envelope import EventDecodeError, EventMeta
from domain.events import EventReceived
from projections.registry import inline_projections
from services.store.errors import IdempotencyKeyReused, VersionConflict
from services.store.events import (
    LOCK_AND_INSERT_MAX_EVENTS,
    AppendResult,
    StreamAppend,
    append_in_transaction,
    read_stream,
)
from services.store.order import START
from services.store.read import read_all
from services.store.tail import follow_stored

PROJECTIONS = inline_projections()


def received(n: int) -> EventReceived:
    return EventReceived(event_id=str(uuid.uuid4()), topic="test.topic", payload={"n": n})


def meta(actor: str = "tester", key: str | None = None) -> EventMeta:
    return EventMeta(actor=actor, correlation_id=str(uuid.uuid4()), idempotency_key=key)


async def append(
    pool: asyncpg.Pool,
    stream: str,
    events: list[EventReceived],
    expected: int | None = None,
    event_meta: EventMeta | None = None,
    fingerprint: str = "",
) -> AppendResult:
    async with pool.acquire() as conn, conn.transaction():
        return await append_in_transaction(
            conn,
            [StreamAppend(stream, events, expected)],
            event_meta or meta(),
            PROJECTIONS,
            fingerprint=fingerprint,
        )


async def count_events(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events"))


async def test_append_assigns_versions_and_reads_back_in_order(pool: asyncpg.Pool) -> None:
    first = await append(pool, "s-1", [received(1), received(2)], expected=0)
    second = await append(pool, "s-1", [received(3)], expected=2)
    assert first.versions == {"s-1": 2}
    assert second.versions == {"s-1": 3}
    assert second.first_position > first.last_position
    async with pool.acquire() as conn:
        envelopes = await read_stream(conn, "s-1")
    assert [e.version for e in envelopes] == [1, 2, 3]
    assert [e.event.payload["n"] for e in envelopes] == [1, 2, 3]  # type: ignore[union-attr]
    assert all(e.meta.actor == "tester" for e in envelopes)


async def test_racing_appenders_on_one_stream_exactly_one_wins(pool: asyncpg.Pool) -> None:
    await append(pool, "race", [received(0)], expected=0)
    winner_meta = meta(key="cmd-1")
    results = await asyncio.gather(
        append(pool, "race", [received(1)], 1, winner_meta, "fp"),
        append(pool, "race", [received(2)], 1, meta(key="cmd-2"), "fp"),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, AppendResult)]
    conflicts = [r for r in results if isinstance(r, VersionConflict)]
    assert len(wins) == 1, results
    assert len(conflicts) == 1, results
    assert conflicts[0].expected == 1
    assert conflicts[0].actual == 2

    before = await count_events(pool)
    winner_key = "cmd-1" if results[0] is wins[0] else "cmd-2"
    retry = await append(pool, "race", [received(9)], 1, meta(key=winner_key), "fp")
    assert retry.replayed
    assert msgspec_fields(retry) == msgspec_fields(wins[0])
    assert await count_events(pool) == before


def msgspec_fields(result: AppendResult) -> tuple[int, int, tuple[tuple[str, int], ...]]:
    return result.first_position, result.last_position, tuple(sorted(result.versions.items()))


async def test_concurrent_repeats_of_one_idempotent_command_append_once(
    pool: asyncpg.Pool,
) -> None:
    results = await asyncio.gather(
        *(append(pool, "idem", [received(1)], None, meta(key="same"), "fp") for _ in range(8))
    )
    assert sum(not r.replayed for r in results) == 1
    assert len({msgspec_fields(r) for r in results}) == 1
    assert await count_events(pool) == 1


async def test_an_idempotency_key_reused_for_another_command_is_refused(
    pool: asyncpg.Pool,
) -> None:
    await append(pool, "idem", [received(1)], None, meta(key="k"), "first")
    with pytest.raises(IdempotencyKeyReused):
        await append(pool, "idem", [received(2)], None, meta(key="k"), "second")
    # Keys are per actor: another agent may use the same key.
    await append(pool, "idem", [received(3)], None, meta(actor="other", key="k"), "second")
    assert await count_events(pool) == 2


async def test_expected_version_ahead_of_the_stream_is_a_conflict(pool: asyncpg.Pool) -> None:
    with pytest.raises(VersionConflict) as raised:
        await append(pool, "new-stream", [received(1)], expected=3)
    assert raised.value.actual == 0
    assert await count_events(pool) == 0


@pytest.mark.parametrize("size", [1, LOCK_AND_INSERT_MAX_EVENTS + 1])
async def test_one_stale_stream_of_a_command_refuses_all_of_it(
    pool: asyncpg.Pool, size: int
) -> None:
    """Small commands check and insert in one statement, big ones in two: both refuse the
    whole command when any stream's expected version is stale, and insert nothing."""
    await append(pool, "moved", [received(0)])
    command = [
        StreamAppend("fresh", [received(n) for n in range(size)], 0),
        StreamAppend("moved", [received(1)], 0),
    ]
    async with pool.acquire() as conn:
        with pytest.raises(VersionConflict) as raised:
            async with conn.transaction():
                await append_in_transaction(conn, command, meta(), PROJECTIONS)
    assert (raised.value.stream, raised.value.expected, raised.value.actual) == ("moved", 0, 1)
    assert await count_events(pool) == 1


async def test_an_append_of_no_events_still_checks_its_version(pool: asyncpg.Pool) -> None:
    await append(pool, "moved", [received(0)])
    command = [StreamAppend("other", [received(1)], 0), StreamAppend("moved", [], 0)]
    async with pool.acquire() as conn:
        with pytest.raises(VersionConflict):
            async with conn.transaction():
                await append_in_transaction(conn, command, meta(), PROJECTIONS)
    assert await count_events(pool) == 1


async def test_the_log_is_append_only(pool: asyncpg.Pool) -> None:
    await append(pool, "s", [received(1)])
    for statement in ("UPDATE events SET type = 'x'", "DELETE FROM events", "TRUNCATE events"):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await pool.execute(statement)
    assert await count_events(pool) == 1


async def test_an_unknown_stored_event_type_is_a_clear_error(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO events (stream, version, type, data, meta) VALUES ('s', 1, $1, $2, $3)",
        "martian.landed",
        '{"type": "martian.landed"}',
        '{"actor": "a", "correlation_id": "c"}',
    )
    async with pool.acquire() as conn:
        with pytest.raises(EventDecodeError, match="position"):  # noqa: PT012 - a wait, then the read
            # Readers see a row once every transaction begun before it has ended: another
            # test's, on the shared server, may still be open for a moment.
            for _ in range(200):
                await read_all(conn, after=START, limit=10)
                await asyncio.sleep(0.05)


@pytest.mark.timeout(180)
async def test_tailer_sees_every_concurrent_append_once_in_the_logs_order(
    pool: asyncpg.Pool,
) -> None:
    appenders, per_appender = 16, 500
    total = appenders * per_appender
    seen: list[int] = []

    async def follow() -> None:
        async with (
            pool.acquire() as conn,
            contextlib.aclosing(follow_stored(conn)) as batches,
        ):
            async for batch in batches:
                seen.extend(stored.position for stored in batch)
                if len(seen) == total:
                    return

    async def appender(seed: int) -> None:
        rng = random.Random(seed)
        left = per_appender
        while left:
            size = min(left, rng.choice((1, 1, 1, 2, 5)))
            stream = f"stream-{rng.randrange(50)}"
            await append(pool, stream, [received(i) for i in range(size)])
            left -= size

    follower = asyncio.create_task(follow())
    await asyncio.gather(*(appender(seed) for seed in range(appenders)))
    await asyncio.wait_for(follower, timeout=60)

    in_order = "SELECT position FROM events ORDER BY txid, position"
    stored = [r["position"] for r in await pool.fetch(in_order)]
    assert len(stored) == total
    assert seen == stored  # every event, once, in the log's one order (txid, position)
    assert len(set(seen)) == total
