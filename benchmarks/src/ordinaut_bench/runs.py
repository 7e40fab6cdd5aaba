"""End-to-end run throughput: N runs of a one-step (`debug.echo`) task, due -> succeeded.

Runs are queued straight into the event store (as the timer would, in batches), all due at
once, and `ordinaut worker` processes execute them. Throughput is runs over the time from
the due instant to the last run.succeeded; the delay is each run's start minus its run_at.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import TextIO

import asyncpg

from domain.envelope import EventMeta
from domain.events import RunQueued, TaskCreated, TaskDefinition, run_stream, task_stream
from ordinaut_bench.harness import Goal
from ordinaut_bench.report import percentile, print_table
from projections.registry import inline_projections
from services.channels.work import Announcer
from services.cli.progress import ProgressBar
from services.store.events import StreamAppend, append_in_transaction
from services.store.pool import open_pool

_BATCH = 1000
GOALS = (Goal("runs_per_second", 2000, at_least=True, text="≥ 2,000 runs/s end-to-end on 2 cores"),)
# What limits `bench runs` (update when measured again); `bench compare` shows it too.
LIMITS: str | None = (
    "The two cores, not a lock. `bench runs --count 30000 --workers 4` (2026-12-06 08:33, quiet"
    " machine): the machine was 200% busy (PostgreSQL's backends 107%, the 4 workers 77%, the"
    " bench's enqueuer 15%); of the backends' active samples (pg_stat_activity every 20 ms) 74%"
    " ran on a core, 12% waited on an LWLock (WAL insertion, buffers), 11% on WAL I/O and 2% on"
    " a heavyweight lock. Runs/s grows with worker processes until the cores are full (1 < 2 <"
    " 4, with shrinking steps), and leasing (FOR UPDATE SKIP LOCKED) never queues workers behind"
    " one another. What this session took off each run: the runs projection wrote a batch's rows"
    " with one INSERT ... ON CONFLICT per row (executemany) and now writes them in one statement"
    " (jsonb_populate_recordset); ownership filed each event with its own INSERT and now files a"
    " batch with one statement per kind; a run's last step and its end were written to its row"
    " in two passes (waves) and now in one, so a run costs two row writes after run.queued"
    " instead of three; a command's stream lock and insert are one statement. pg_stat_statements"
    " over 20,000 runs: the runs upserts remain the largest cost (~35 µs a row: the table has 11"
    " indexes, and status changes rule out HOT updates), then the event inserts (~13 µs an"
    " event, five indexes). Peers record one row per job and run no pipeline."
)
_PIPELINE = {"pipeline": [{"id": "echo", "uses": "debug.echo", "with": {"n": "${run.id}"}}]}


async def _create_task(pool: asyncpg.Pool) -> str:
    task_id = str(uuid.uuid4())
    definition = TaskDefinition(
        title="bench runs", schedule_kind="cron", schedule_expr="0 0 1 1 *", payload=_PIPELINE
    )
    async with pool.acquire() as conn, conn.transaction():
        await append_in_transaction(
            conn,
            [
                StreamAppend(
                    task_stream(task_id), [TaskCreated(task_id=task_id, definition=definition)], 0
                )
            ],
            EventMeta(actor="bench", correlation_id="bench"),
            inline_projections(),
        )
    return task_id


async def _queue(
    pool: asyncpg.Pool, task_id: str, count: int, at: datetime, announcer: Announcer | None = None
) -> None:
    """``count`` runs due at ``at``, a batch per transaction; with ``announcer``, a Redis
    wake-up per run (at most WAKE_ENTRIES_MAX) after each commit, as the timer sends."""
    projections = inline_projections()
    for start in range(0, count, _BATCH):
        appends = []
        for _ in range(start, min(start + _BATCH, count)):
            run_id = str(uuid.uuid4())
            queued = RunQueued(
                run_id=run_id,
                task_id=task_id,
                owner="bench",
                scheduled_for=at,
                run_at=at,
                trigger="run_now",
            )
            appends.append(StreamAppend(run_stream(run_id), [queued], 0))
        async with pool.acquire() as conn, conn.transaction():
            await append_in_transaction(
                conn, appends, EventMeta(actor="bench", correlation_id="bench"), projections
            )
        if announcer is not None:
            await announcer.announce(a.stream.removeprefix("run-") for a in appends)


def _start_workers(
    database_url: str, redis_url: str, processes: int, concurrency: int
) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "ORDINAUT_DATABASE_URL": database_url,
        "ORDINAUT_REDIS_URL": redis_url,
        "ORDINAUT_LOG_LEVEL": "warning",
        "ORDINAUT_WORKER_CONCURRENCY": str(concurrency),
    }
    return [
        subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()


async def bench_runs(
    database_url: str,
    redis_url: str,
    *,
    count: int = 20_000,
    processes: int = 2,
    concurrency: int = 64,
    out: TextIO = sys.stdout,
) -> dict[str, float]:
    """Queue ``count`` due runs, let the workers drain them, and report the figures."""
    async with open_pool(database_url, size=4, warm=1) as pool:
        task_id = await _create_task(pool)
        workers = _start_workers(database_url, redis_url, processes, concurrency)
        try:
            await asyncio.sleep(2.0)  # let the workers connect before the clock starts
            print(f"queueing {count} runs ...", file=out, flush=True)
            due = datetime.now(UTC)
            await _queue(pool, task_id, count, due)
            bar = ProgressBar("runs")
            started = time.monotonic()
            while True:
                done = await pool.fetchval("SELECT count(*) FROM runs WHERE status = 'succeeded'")
                bar.update(done, count)
                if done >= count:
                    break
                if any(w.poll() is not None for w in workers):
                    raise RuntimeError("a worker exited during the benchmark")
                if time.monotonic() - started > 600:
                    raise RuntimeError(f"only {done} of {count} runs finished in 600 s")
                await asyncio.sleep(0.25)
            bar.finish()
        finally:
            _stop(workers)
        row = await pool.fetchrow(
            "SELECT extract(epoch FROM max(finished_at) - $1) AS seconds,"
            " array_agg(extract(epoch FROM started_at - run_at)) AS delays FROM runs",
            due,
        )
    assert row is not None
    seconds = float(row["seconds"])
    delays = [float(d) * 1000 for d in row["delays"]]
    figures = {
        "runs": float(count),
        "seconds": seconds,
        "runs_per_second": count / seconds,
        "start_delay_p50_ms": percentile(delays, 50),
        "start_delay_p99_ms": percentile(delays, 99),
        "worker_processes": float(processes),
        "concurrency_per_worker": float(concurrency),
    }
    print_table([{k: round(v, 2) for k, v in figures.items()}], out)
    return figures
