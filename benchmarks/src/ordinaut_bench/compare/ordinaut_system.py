"""Ordinaut under `bench compare`: `ordinaut worker` processes on a scratch database.

Enqueue is what the timer does when runs fall due: ``run.queued`` events appended in batches
of 1,000 per transaction, with a Redis wake-up per run, at most 256 a batch
(services/channels/work.py). The job is a one-step ``debug.echo`` pipeline. The delay part
creates one-shot (``once``) tasks and runs `ordinaut timer` beside the workers (a third,
mostly idle process).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as redis

from domain.envelope import EventMeta
from domain.events import TaskCreated, TaskDefinition, task_stream
from ordinaut_bench.compare.common import (
    ASYNC_CONCURRENCY,
    READY_TIMEOUT_SECONDS,
    WORKER_PROCESSES,
    Round,
    due_times,
    spawn,
    stop,
    wait_done,
)
from ordinaut_bench.runs import _create_task, _queue
from projections.registry import inline_projections
from services.channels.work import Announcer
from services.store.events import StreamAppend, append_in_transaction
from services.store.pool import open_pool

_ALIVE = "SELECT count(*) FROM worker_presence WHERE last_seen >= now() - interval '30 seconds'"
_DONE = "SELECT count(*) FROM runs WHERE task_id = ANY($1::text[]) AND status = 'succeeded'"
# What the progress polls read while a part runs, every 0.1 s: cheap, so the bench does not
# load the server it measures (_DONE over a round's 5,000 runs took 5-8 ms a poll). A run
# leaves due_work when it ends; the runs queued since an instant are the delay part's.
_UNFINISHED = "SELECT count(*) FROM due_work WHERE task_id = $1"
_SUCCEEDED_SINCE = "SELECT count(*) FROM runs WHERE status = 'succeeded' AND queued_at >= $1"
_PIPELINE = {"pipeline": [{"id": "noop", "uses": "debug.echo", "with": {"n": "${run.id}"}}]}


class OrdinautSystem:
    """Ordinaut on ``database_url`` (a scratch database) and ``redis_url``."""

    name = "ordinaut"

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.database_url, self.redis_url = database_url, redis_url

    def _env(self) -> dict[str, str]:
        return {
            "ORDINAUT_DATABASE_URL": self.database_url,
            "ORDINAUT_REDIS_URL": self.redis_url,
            "ORDINAUT_LOG_LEVEL": "warning",
            "ORDINAUT_WORKER_CONCURRENCY": str(ASYNC_CONCURRENCY),
        }

    @contextlib.asynccontextmanager
    async def _running(self, pool: asyncpg.Pool, timer: bool) -> AsyncIterator[list[Any]]:
        await pool.execute("DELETE FROM worker_presence")
        workers = [
            spawn(["-m", "services.cli.main", "worker"], self._env())
            for _ in range(WORKER_PROCESSES)
        ]
        if timer:
            workers.append(spawn(["-m", "services.cli.main", "timer"], self._env()))
        try:
            await _until(lambda: pool.fetchval(_ALIVE), WORKER_PROCESSES)
            yield workers
        finally:
            await stop(workers)

    async def throughput(self, jobs: int) -> Round:
        async with open_pool(self.database_url, size=4, warm=1) as pool:
            task_id = await _create_task(pool)
            async with self._running(pool, timer=False) as workers:
                client = redis.Redis.from_url(self.redis_url)
                try:
                    started: datetime = await pool.fetchval("SELECT clock_timestamp()")
                    await _queue(pool, task_id, jobs, started, Announcer(client))

                    async def ended() -> int:
                        return jobs - int(await pool.fetchval(_UNFINISHED, task_id))

                    await wait_done("ordinaut", jobs, ended, workers)
                finally:
                    await client.aclose()
            succeeded = await pool.fetchval(_DONE, [task_id])
            if succeeded != jobs:
                raise RuntimeError(f"ordinaut: {jobs - succeeded} of {jobs} runs did not succeed")
            finished: datetime = await pool.fetchval(
                "SELECT max(finished_at) FROM runs WHERE task_id = $1", task_id
            )
        return Round(jobs, (finished - started).total_seconds())

    async def delays(self, rate: int, count: int) -> list[float]:
        async with open_pool(self.database_url, size=4, warm=1) as pool:
            async with self._running(pool, timer=True) as processes:
                # The timer is ready once it fired a first one-shot task.
                (probe,) = await _create_once_tasks(pool, [time.time()])
                await wait_done(
                    "ordinaut timer start",
                    1,
                    lambda: pool.fetchval(_DONE, [probe]),
                    processes,
                    limit=READY_TIMEOUT_SECONDS,
                )
                since: datetime = await pool.fetchval("SELECT clock_timestamp()")
                task_ids = await _create_once_tasks(pool, due_times(rate, count))
                await wait_done(
                    "ordinaut (due)",
                    count,
                    lambda: pool.fetchval(_SUCCEEDED_SINCE, since),
                    processes,
                )
            rows = await pool.fetch(
                "SELECT extract(epoch FROM started_at - scheduled_for) * 1000 AS ms FROM runs"
                " WHERE task_id = ANY($1::text[])",
                task_ids,
            )
        return [float(row["ms"]) for row in rows]

    async def close(self) -> None:
        """Nothing: the driver drops the scratch database."""


async def _until(count: Any, wanted: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_SECONDS
    while await count() < wanted:
        if loop.time() > deadline:
            raise RuntimeError("ordinaut workers did not start")
        await asyncio.sleep(0.05)


async def _create_once_tasks(pool: asyncpg.Pool, due: Sequence[float]) -> list[str]:
    """A one-shot task per due instant, in batches of 1,000 per transaction."""
    task_ids: list[str] = []
    projections = inline_projections()
    for start in range(0, len(due), 1000):
        appends = []
        for at in due[start : start + 1000]:
            instant = datetime.fromtimestamp(at, UTC)
            task_id = str(uuid.uuid4())
            expr = instant.isoformat()
            definition = TaskDefinition(
                title="bench once", schedule_kind="once", schedule_expr=expr, payload=_PIPELINE
            )
            created = TaskCreated(task_id=task_id, definition=definition, next_run_at=instant)
            appends.append(StreamAppend(task_stream(task_id), [created], 0))
            task_ids.append(task_id)
        async with pool.acquire() as conn, conn.transaction():
            meta = EventMeta(actor="bench", correlation_id="bench")
            await append_in_transaction(conn, appends, meta, projections)
    return task_ids
