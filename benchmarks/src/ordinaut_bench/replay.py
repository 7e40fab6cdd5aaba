"""Projection rebuild speed: replay N stored events through every read model.

The log is seeded with COPY (not timed) and shaped like a busy deployment's: tasks created,
then cycles in which the timer fires a task (``task.due`` + ``run.queued``) and a worker runs
it (``run.started``, ``run.step_succeeded``, ``run.succeeded``), 64 runs interleaved at a
time as concurrent workers write them, with an external ``event.received`` for every tenth
run. The figure is the rebuild itself: the same code as ``ordinaut projections rebuild``.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import asyncpg

from domain.envelope import EventMeta, encode_event, encode_meta
from domain.events import (
    Event,
    EventReceived,
    RunQueued,
    RunStarted,
    RunStepSucceeded,
    RunSucceeded,
    TaskCreated,
    TaskDefinition,
    TaskDue,
    run_stream,
    task_stream,
)
from ordinaut_bench.append import TOPICS, _payload
from ordinaut_bench.harness import Goal
from ordinaut_bench.report import print_table
from projections.rebuild import rebuild
from projections.registry import inline_projections
from services.cli.progress import ProgressBar

GOALS = (
    Goal("events_per_second", 50_000, at_least=True, text="projection rebuild ≥ 50,000 events/s"),
)
# Measured by timing the rebuild's phases and its Python CPU on 200,000 events, and the bench
# on 1,000,000; update when measured again.
LIMITS: str | None = (
    "The rebuild folds each stream's events in memory with the projections' pure rules"
    " (`projections/rules/`, the same the inline path applies) and writes each final row once"
    " with COPY, building the indexes at the end; PostgreSQL reads the next 5,000 events while"
    " Python folds the last, and Python's cycle collector is paused meanwhile (walking the"
    " growing heap of folded rows took ~40% of the fold's CPU). Back to back on 1,000,000"
    " events, load average 1.5-1.7 on the 2 shared cores: 33,708/s before, 56,071/s and"
    " 59,098/s after; at load 3.6-4.5: 22,792/s before, 46,973/s after."
    " What limits it now is Python on one core, ~12 µs of CPU per event (was ~19: decoding"
    " ~1.5 µs, the rules and filing ownership ~4.5 µs, COPY records ~1 µs, asyncpg's reading"
    " of the rows and COPY encoding the rest), and PostgreSQL's work that nothing overlaps: on"
    " 200,000 events the COPY of the 39,040 run rows (five jsonb columns) took 0.7-1.2 s and"
    " the index builds 0.5-1.1 s, about a third of the wall time. Next steps: decode only the"
    " fields the rules read, or COPY the runs rows while the fold goes on."
)

TASKS = 1000
CONCURRENT_RUNS = 64
_COPY_CHUNK = 50_000
_COLUMNS = ("stream", "version", "type", "data", "meta", "recorded_at")
_PIPELINE = {"pipeline": [{"id": "echo", "uses": "debug.echo", "with": {"text": "${run.id}"}}]}

Row = tuple[str, int, str, str, str, datetime]


class _Log:
    """Builds rows with consecutive stream versions and a clock that moves 1 ms per event."""

    def __init__(self, meta: EventMeta) -> None:
        self.versions: dict[str, int] = {}
        self.meta = encode_meta(meta)
        self.clock = datetime(2026, 1, 1, tzinfo=UTC)

    def row(self, stream: str, event: Event, type_: str) -> Row:
        version = self.versions.get(stream, 0) + 1
        self.versions[stream] = version
        self.clock += timedelta(milliseconds=1)
        return (stream, version, type_, encode_event(event), self.meta, self.clock)


def _definition(n: int) -> TaskDefinition:
    return TaskDefinition(
        title=f"replay bench {n}",
        schedule_kind="cron",
        schedule_expr=f"{n % 60} * * * *",
        payload=_PIPELINE,
    )


def _cycle(log: _Log, rng: random.Random, task_ids: list[str], first: int) -> Iterator[Row]:
    """CONCURRENT_RUNS runs fired and executed side by side, as workers interleave them."""
    runs: list[tuple[str, str]] = []
    for n in range(first, first + CONCURRENT_RUNS):
        task_id, run_id = task_ids[n % len(task_ids)], str(uuid.UUID(int=rng.getrandbits(128)))
        at = log.clock
        yield log.row(
            task_stream(task_id),
            TaskDue(
                task_id=task_id,
                run_id=run_id,
                scheduled_for=at,
                fired_at=at,
                run_at=at,
                next_run_at=at + timedelta(hours=1),
            ),
            "task.due",
        )
        yield log.row(
            run_stream(run_id),
            RunQueued(run_id=run_id, task_id=task_id, owner="admin", scheduled_for=at, run_at=at),
            "run.queued",
        )
        runs.append((task_id, run_id))
        if n % 10 == 0:
            topic = rng.choice(TOPICS)
            event_id = str(uuid.UUID(int=rng.getrandbits(128)))
            received = EventReceived(
                event_id=event_id, topic=topic, payload=_payload(rng), occurred_at=at
            )
            yield log.row(f"topic-{topic}", received, "event.received")
    for _, run_id in runs:
        yield log.row(
            run_stream(run_id),
            RunStarted(
                run_id=run_id,
                attempt=1,
                worker="bench-worker",
                lease_until=log.clock + timedelta(seconds=30),
            ),
            "run.started",
        )
    for _, run_id in runs:
        yield log.row(
            run_stream(run_id),
            RunStepSucceeded(
                run_id=run_id,
                step_id="echo",
                attempt=1,
                tool="debug.echo",
                input={"text": run_id},
                output={"text": run_id},
                duration_ms=0.4,
            ),
            "run.step_succeeded",
        )
    for _, run_id in runs:
        yield log.row(run_stream(run_id), RunSucceeded(run_id=run_id, attempt=1), "run.succeeded")


def _rows(events: int) -> Iterator[Row]:
    """Exactly ``events`` rows of a realistic log (see the module docstring)."""
    rng, log = random.Random(0x5EED), _Log(EventMeta(actor="admin", correlation_id="bench"))
    task_ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(TASKS)]
    produced = 0
    for n, task_id in enumerate(task_ids):
        if produced == events:
            return
        created = TaskCreated(task_id=task_id, definition=_definition(n), next_run_at=log.clock)
        yield log.row(task_stream(task_id), created, "task.created")
        produced += 1
    first = 0
    while True:
        for row in _cycle(log, rng, task_ids, first):
            if produced == events:
                return
            yield row
            produced += 1
        first += CONCURRENT_RUNS


async def seed(conn: asyncpg.Connection[Any], events: int) -> float:
    """COPY ``events`` rows into the (empty) log; returns the seconds it took."""
    started, bar, done = time.perf_counter(), ProgressBar("seeding events"), 0
    chunk: list[Row] = []
    for row in _rows(events):
        chunk.append(row)
        if len(chunk) == _COPY_CHUNK:
            await conn.copy_records_to_table("events", records=chunk, columns=_COLUMNS)
            done += len(chunk)
            bar.update(done, events)
            chunk = []
    if chunk:
        await conn.copy_records_to_table("events", records=chunk, columns=_COLUMNS)
        bar.update(events, events)
    bar.finish()
    # A long-lived database has current planner statistics; a freshly copied one does not.
    await conn.execute("VACUUM ANALYZE events")
    return time.perf_counter() - started


async def bench_replay(
    database_url: str, *, events: int = 1_000_000, out: TextIO = sys.stdout
) -> dict[str, float]:
    """Seed ``events`` events into ``database_url`` (a scratch database), then time rebuilding
    every projection from them."""
    conn = await asyncpg.connect(database_url)
    try:
        print(f"seeding {events:,} events ...", file=out, flush=True)
        seeded = await seed(conn, events)
        bar = ProgressBar("rebuilding all projections")
        started = time.perf_counter()
        replayed = await rebuild(conn, inline_projections(), progress=bar.update)
        seconds = time.perf_counter() - started
        bar.finish()
        runs = int(await conn.fetchval("SELECT count(*) FROM runs WHERE status = 'succeeded'"))
    finally:
        await conn.close()
    figures = {
        "events": float(replayed),
        "seconds": seconds,
        "events_per_second": replayed / seconds,
        "runs_rebuilt": float(runs),
        "seed_seconds": seeded,
    }
    print_table([{k: round(v, 2) for k, v in figures.items()}], out)
    return figures
