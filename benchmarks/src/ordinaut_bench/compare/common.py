"""What the compared systems share: the round's figures, the process budget, worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.cli.progress import ProgressBar

# Every system gets the same budget of two executing processes on a 2-core machine:
# Ordinaut and Procrastinate two worker processes of ASYNC_CONCURRENCY jobs each; Celery one
# prefork worker with two children (concurrency = cores, as Celery recommends).
WORKER_PROCESSES = 2
ASYNC_CONCURRENCY = 64
ROUND_TIMEOUT_SECONDS = 600.0
READY_TIMEOUT_SECONDS = 60.0


class SystemUnavailable(Exception):
    """A peer is not installed (the `bench` extra is missing) or cannot start."""


@dataclass(frozen=True)
class Round:
    """One throughput round: ``jobs`` enqueued at once, done after ``seconds``."""

    jobs: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.jobs / self.seconds


class System(Protocol):
    """One job system under test; each method runs its own worker processes."""

    name: str

    async def throughput(self, jobs: int) -> Round:
        """Start the workers, enqueue ``jobs`` no-op jobs and time enqueue -> all done."""

    async def delays(self, rate: int, count: int) -> list[float]:
        """Start the workers, then enqueue ``count`` jobs due from a moment later on at
        ``rate`` a second (``due_times``); due -> start of each, in ms."""

    async def close(self) -> None:
        """Drop what the system created (databases, Redis keys)."""


def due_times(rate: int, count: int) -> list[float]:
    """Epoch instants ``rate`` a second, the first far enough ahead to enqueue them all."""
    first = time.time() + 1.0 + count / 500
    return [first + n / rate for n in range(count)]


def spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A worker process of this Python, its output discarded."""
    return subprocess.Popen(  # noqa: S603 - our own argv
        [sys.executable, *argv],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def stop(processes: Sequence[subprocess.Popen[bytes]], sig: int = signal.SIGTERM) -> None:
    """Ask each process to stop; kill what is still there after 30 s."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(sig)
    for process in processes:
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


async def wait_done(
    label: str,
    total: int,
    count: Callable[[], Awaitable[int]],
    processes: Sequence[subprocess.Popen[bytes]],
    limit: float = ROUND_TIMEOUT_SECONDS,
) -> None:
    """Poll ``count()`` until it reaches ``total``, with a progress bar; a worker that dies
    or a round that outlasts ``limit`` seconds is an error."""
    bar, loop = ProgressBar(label), asyncio.get_running_loop()
    deadline = loop.time() + limit
    while (done := await count()) < total:
        bar.update(done, total)
        if any(p.poll() is not None for p in processes):
            raise RuntimeError(f"{label}: a worker process exited during the round")
        if loop.time() > deadline:
            raise RuntimeError(f"{label}: only {done} of {total} jobs done in {limit:.0f} s")
        await asyncio.sleep(0.1)
    bar.update(total, total)
    bar.finish()
