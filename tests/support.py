"""Helpers shared by tests: record tasks and read back what fired."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg

from domain.envelope import EventMeta
from domain.events import TaskCreated, TaskDefinition, task_stream
from projections.registry import inline_projections
from services.runtime.embedded import with_database
from services.store.events import StreamAppend, append_in_transaction

PROJECTIONS = inline_projections()


async def db_now(pool: asyncpg.Pool) -> datetime:
    """The database's clock, which the timer goes by."""
    return await pool.fetchval("SELECT clock_timestamp()")  # type: ignore[no-any-return]


async def create_tasks(
    pool: asyncpg.Pool, definitions: list[TaskDefinition], next_run_at: datetime
) -> list[str]:
    """Record task.created events directly (the command layer is tested on its own)."""
    ids = [str(uuid.uuid4()) for _ in definitions]
    appends = [
        StreamAppend(
            task_stream(i), [TaskCreated(task_id=i, definition=d, next_run_at=next_run_at)], 0
        )
        for i, d in zip(ids, definitions, strict=True)
    ]
    async with pool.acquire() as conn, conn.transaction():
        meta = EventMeta(actor="tester", correlation_id=str(uuid.uuid4()))
        await append_in_transaction(conn, appends, meta, PROJECTIONS)
    return ids


def every_second(**changes: object) -> TaskDefinition:
    """A task firing every second (6-field cron), to compress minutes of firing into seconds."""
    fields = {"title": "tick", "schedule_kind": "cron", "schedule_expr": "* * * * * *"}
    return TaskDefinition(**{**fields, **changes})  # type: ignore[arg-type]


async def fired(pool: asyncpg.Pool) -> dict[str, list[datetime]]:
    """scheduled_for of every task.due, per task, in log order."""
    rows = await pool.fetch(
        "SELECT data->>'task_id' AS task_id, (data->>'scheduled_for')::timestamptz AS at"
        " FROM events WHERE type = 'task.due' ORDER BY position"
    )
    by_task: dict[str, list[datetime]] = defaultdict(list)
    for row in rows:
        by_task[row["task_id"]].append(row["at"])
    return by_task


@asynccontextmanager
async def fresh_database(postgres_url: str, template: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a new migrated database, dropped on exit (the log refuses DELETE)."""
    name = f"ordinaut_rebuild_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(with_database(postgres_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        try:
            conn = await asyncpg.connect(with_database(postgres_url, name))
            try:
                yield conn
            finally:
                await conn.close()
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
