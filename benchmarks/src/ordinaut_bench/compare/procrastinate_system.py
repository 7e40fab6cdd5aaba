"""Procrastinate under `bench compare`: its worker (``procrastinate worker``, LISTEN/NOTIFY on,
defaults otherwise) as WORKER_PROCESSES processes of ASYNC_CONCURRENCY jobs, on its own scratch
database. Enqueue is ``batch_defer_async`` in batches of 1,000; the delay part defers each job
with ``schedule_at``. Times come from Procrastinate's own ``procrastinate_events``."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg

from ordinaut_bench.compare.common import (
    ASYNC_CONCURRENCY,
    READY_TIMEOUT_SECONDS,
    WORKER_PROCESSES,
    Round,
    SystemUnavailable,
    due_times,
    spawn,
    stop,
    wait_done,
)

_APP = "ordinaut_bench.compare.procrastinate_app.app"
_ALIVE = "SELECT count(*) FROM procrastinate_workers"
_DONE = "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = $1 AND status = 'succeeded'"
_FINISHED = """
SELECT max(e.at) FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id
WHERE j.queue_name = $1 AND e.type = 'succeeded'
"""
_DELAYS = """
SELECT extract(epoch FROM e.at - j.scheduled_at) * 1000 AS ms
FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id
WHERE j.queue_name = $1 AND e.type = 'started'
"""


def _postgres_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class ProcrastinateSystem:
    """Procrastinate on ``database_url`` (a scratch database of its own)."""

    name = "procrastinate"

    def __init__(self, database_url: str) -> None:
        try:
            from ordinaut_bench.compare.procrastinate_app import DSN_ENV, make_app
        except ImportError as exc:
            raise SystemUnavailable(
                f"procrastinate is not installed ({exc.name}): pip install 'ordinaut[bench]'"
            ) from None
        self.database_url, self.dsn_env = database_url, DSN_ENV
        self.app = make_app(_postgres_dsn(database_url))

    async def prepare(self) -> None:
        """Create Procrastinate's schema in the scratch database."""
        async with self.app.open_async():
            await self.app.schema_manager.apply_schema_async()

    @contextlib.asynccontextmanager
    async def _running(self, pool: asyncpg.Pool) -> AsyncIterator[list[Any]]:
        await pool.execute("DELETE FROM procrastinate_workers")
        env = {self.dsn_env: _postgres_dsn(self.database_url)}
        argv = [
            "-m",
            "procrastinate",
            "--app",
            _APP,
            "worker",
            "--concurrency",
            str(ASYNC_CONCURRENCY),
        ]
        workers = [spawn(argv, env) for _ in range(WORKER_PROCESSES)]
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + READY_TIMEOUT_SECONDS
            while await pool.fetchval(_ALIVE) < WORKER_PROCESSES:
                if loop.time() > deadline or any(w.poll() is not None for w in workers):
                    raise RuntimeError("procrastinate workers did not start")
                await asyncio.sleep(0.05)
            yield workers
        finally:
            await stop(workers)

    async def throughput(self, jobs: int) -> Round:
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        deferrer = self.app.configure_task("noop", queue=queue)
        async with (
            asyncpg.create_pool(self.database_url, min_size=1, max_size=2) as pool,
            self._running(pool) as workers,
            self.app.open_async(),
        ):
            started: datetime = await pool.fetchval("SELECT clock_timestamp()")
            for first in range(0, jobs, 1000):
                await deferrer.batch_defer_async(*({} for _ in range(min(1000, jobs - first))))
            await wait_done("procrastinate", jobs, lambda: pool.fetchval(_DONE, queue), workers)
            finished: datetime = await pool.fetchval(_FINISHED, queue)
        return Round(jobs, (finished - started).total_seconds())

    async def delays(self, rate: int, count: int) -> list[float]:
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        async with (
            asyncpg.create_pool(self.database_url, min_size=1, max_size=2) as pool,
            self._running(pool) as workers,
            self.app.open_async(),
        ):
            for at in due_times(rate, count):
                instant = datetime.fromtimestamp(at, UTC)
                await self.app.configure_task(
                    "noop", queue=queue, schedule_at=instant
                ).defer_async()
            await wait_done(
                "procrastinate (due)", count, lambda: pool.fetchval(_DONE, queue), workers
            )
            rows = await pool.fetch(_DELAYS, queue)
        return [float(row["ms"]) for row in rows]

    async def close(self) -> None:
        """Nothing: the driver drops the scratch database."""
