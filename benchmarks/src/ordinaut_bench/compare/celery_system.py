"""Celery under `bench compare`: one prefork worker with concurrency = 2 (the cores; two
child processes), Redis broker and result backend under a key prefix of its own (only those
keys are deleted afterwards). Enqueue is ``apply_async`` per job (Celery has no bulk send);
the delay part sends each job with ``eta``. Completion is read from the result backend:
``date_done`` ends a round; the task returns its own start time for the delay part."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as redis

from ordinaut_bench.compare.common import (
    READY_TIMEOUT_SECONDS,
    WORKER_PROCESSES,
    Round,
    SystemUnavailable,
    due_times,
    spawn,
    stop,
    wait_done,
)

_CHUNK = 1000


class CelerySystem:
    """Celery on ``redis_url``, every key under a fresh ``ordinaut-bench-celery-<id>:`` prefix."""

    name = "celery"

    def __init__(self, redis_url: str) -> None:
        try:
            from ordinaut_bench.compare.celery_app import PREFIX_ENV, URL_ENV, make_app
        except ImportError as exc:
            raise SystemUnavailable(
                f"celery is not installed ({exc.name}): pip install 'ordinaut[bench]'"
            ) from None
        self.redis_url = redis_url
        self.prefix = f"ordinaut-bench-celery-{uuid.uuid4().hex[:8]}:"
        self.env = {URL_ENV: redis_url, PREFIX_ENV: self.prefix}
        self.app = make_app(redis_url, self.prefix)
        self.client = redis.Redis.from_url(redis_url)

    def _meta_key(self, task_id: str) -> str:
        return f"{self.prefix}celery-task-meta-{task_id}"

    async def _count(self, ids: Sequence[str]) -> int:
        total = 0
        for first in range(0, len(ids), _CHUNK):
            keys = [self._meta_key(i) for i in ids[first : first + _CHUNK]]
            total += int(await self.client.exists(*keys))
        return total

    async def _results(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for first in range(0, len(ids), _CHUNK):
            keys = [self._meta_key(i) for i in ids[first : first + _CHUNK]]
            found += [json.loads(raw) for raw in await self.client.mget(keys) if raw]
        return found

    def _send(self, count: int, etas: Sequence[float] | None = None) -> list[str]:
        noop = self.app.tasks["noop"]
        if etas is None:
            return [noop.apply_async().id for _ in range(count)]
        return [noop.apply_async(eta=datetime.fromtimestamp(at, UTC)).id for at in etas]

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[list[Any]]:
        argv = [
            "-m",
            "celery",
            "-A",
            "ordinaut_bench.compare.celery_app",
            "worker",
            "-P",
            "prefork",
            "-c",
            str(WORKER_PROCESSES),
            "-l",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"bench-{uuid.uuid4().hex[:6]}@%h",
        ]
        worker = spawn(argv, self.env)
        try:
            # Ready once a first job went through (the worker and a child are up).
            (probe,) = await asyncio.to_thread(self._send, 1)
            await wait_done(
                "celery start",
                1,
                lambda: self._count([probe]),
                [worker],
                limit=READY_TIMEOUT_SECONDS,
            )
            yield [worker]
        finally:
            await stop([worker])

    async def throughput(self, jobs: int) -> Round:
        async with self._running() as workers:
            started = time.time()
            ids = await asyncio.to_thread(self._send, jobs)
            await wait_done("celery", jobs, lambda: self._count(ids), workers)
            results = await self._results(ids)
        finished = max(_epoch(r["date_done"]) for r in results)
        return Round(jobs, finished - started)

    async def delays(self, rate: int, count: int) -> list[float]:
        async with self._running() as workers:
            due = due_times(rate, count)
            ids = await asyncio.to_thread(self._send, count, due)
            await wait_done("celery (due)", count, lambda: self._count(ids), workers)
            results = await self._results(ids)
        by_id = dict(zip(ids, due, strict=True))
        return [(float(r["result"]) - by_id[r["task_id"]]) * 1000 for r in results]

    async def close(self) -> None:
        """Delete every key under this run's prefix (and nothing else)."""
        async for key in self.client.scan_iter(match=f"{self.prefix}*", count=1000):
            await self.client.delete(key)
        await self.client.aclose()


def _epoch(iso: str) -> float:
    at = datetime.fromisoformat(iso)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
