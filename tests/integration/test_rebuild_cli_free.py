"""projections.rebuild against real Postgres, called directly: locking, rollback, edge cases."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from domain.envelope import EventDecodeError, EventMeta
from domain.events import Event, RunQueued, TaskCreated, TaskDefinition, TaskDue, TaskPaused
from projections.base import Connection
from projections.rebuild import rebuild
from projections.registry import inline_projections
from services.store.events import StreamAppend, append_in_transaction

PROJECTIONS = inline_projections()
AT = datetime(2030, 1, 1, 9, tzinfo=UTC)
# In this test's database only: other databases on the server have appenders of their own.
WAITING_FOR_TABLE_LOCK = """
SELECT count(*) FROM pg_locks WHERE locktype = 'relation' AND NOT granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def created(task_id: str) -> TaskCreated:
    definition = TaskDefinition(title=task_id, schedule_kind="cron", schedule_expr="0 9 * * *")
    return TaskCreated(task_id=task_id, definition=definition, next_run_at=AT)


def due(task_id: str) -> TaskDue:
    return TaskDue(
        task_id=task_id,
        run_id=f"run-{task_id}",
        scheduled_for=AT,
        fired_at=AT,
        run_at=AT,
        next_run_at=None,
    )


def queued(task_id: str) -> RunQueued:
    return RunQueued(
        run_id=f"run-{task_id}", task_id=task_id, owner="tester", scheduled_for=AT, run_at=AT
    )


async def append(conn: Connection, task_id: str, *events: Event, stream: str = "") -> None:
    meta = EventMeta(actor="tester", correlation_id=str(uuid.uuid4()))
    async with conn.transaction():
        await append_in_transaction(
            conn, [StreamAppend(stream or f"task-{task_id}", events)], meta, PROJECTIONS
        )


async def checkpoints(conn: Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT name, position FROM projection_checkpoints")
    return {row["name"]: row["position"] for row in rows}


async def test_an_empty_log_empties_the_tables_and_zeroes_the_checkpoints(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        # A row and a checkpoint the log does not explain, e.g. left by a bug.
        await conn.execute(
            "INSERT INTO task (id, title, schedule_kind, schedule_expr, timezone, priority,"
            " definition, status, created_by, created_at, updated_at, version)"
            " VALUES ('ghost', 'g', 'cron', '* * * * *', 'UTC', 5, '{}', 'active', 'x', now(),"
            " now(), 1)"
        )
        await conn.execute("UPDATE projection_checkpoints SET position = 42")
        calls: list[tuple[int, int]] = []
        count = await rebuild(conn, PROJECTIONS, progress=lambda *a: calls.append(a))
        assert (count, calls) == (0, [])
        assert await conn.fetchval("SELECT count(*) FROM task") == 0
        assert set((await checkpoints(conn)).values()) == {0}


async def test_appends_wait_for_a_rebuild_and_are_projected_after_it(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await append(conn, "a", created("a"))
    async with pool.acquire() as rebuilder, pool.acquire() as appender:
        async with rebuilder.transaction():  # keeps the rebuild's lock until we let go
            assert await rebuild(rebuilder, PROJECTIONS) == 1
            waiting = asyncio.create_task(append(appender, "a", TaskPaused(task_id="a")))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            # No global lock: it waits on the rebuilt table the TRUNCATE holds, and projects
            # into the rebuilt rows once the rebuild commits.
            assert await pool.fetchval(WAITING_FOR_TABLE_LOCK) == 1
        await asyncio.wait_for(waiting, timeout=10)
        assert await appender.fetchval("SELECT status FROM task WHERE id = 'a'") == "paused"
        # The checkpoint is the rebuild's: appends no longer write that shared row.
        assert set((await checkpoints(appender)).values()) == {1}


async def test_an_undecodable_event_rolls_the_whole_rebuild_back(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await append(conn, "a", created("a"))
        await conn.execute(
            "INSERT INTO events (stream, version, type, data, meta) VALUES ('s', 1, $1, $2, $3)",
            "martian.landed",
            '{"type": "martian.landed"}',
            '{"actor": "a", "correlation_id": "c"}',
        )
        before = await checkpoints(conn)
        with pytest.raises(EventDecodeError, match="position 2"):
            await rebuild(conn, PROJECTIONS, batch=1)
        assert await conn.fetchval("SELECT count(*) FROM task") == 1
        assert await checkpoints(conn) == before


async def test_rebuilding_one_projection_leaves_the_others_alone(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await append(conn, "a", created("a"), due("a"))
        await append(conn, "a", queued("a"), stream="run-run-a")
        await conn.execute("UPDATE due_work SET locked_by = 'worker-1'")
        await conn.execute("UPDATE projection_checkpoints SET position = 7")
        await conn.execute("UPDATE projection_checkpoints SET position = 0 WHERE name = 'task'")
        only_task = PROJECTIONS.named(["task"])
        assert await rebuild(conn, only_task) == 3
        assert await conn.fetchval("SELECT locked_by FROM due_work") == "worker-1"
        # The rebuilt projection's checkpoint is at the log's end; the others are untouched.
        expected = {p.name: 7 for p in PROJECTIONS.projections}
        assert await checkpoints(conn) == {**expected, "task": 3}


async def test_a_rebuild_refuses_a_snapshot_that_would_predate_its_lock(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        with pytest.raises(asyncpg.InterfaceError, match="isolation"):
            await rebuild(conn, PROJECTIONS)


async def test_a_batch_must_hold_an_event(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(ValueError, match="batch"):
            await rebuild(conn, PROJECTIONS, batch=0)
