"""Seed a database for the dashboard benchmark: an agent's tasks and runs, through the event log.

Every task and run is recorded as the events the service itself would record, appended in
batches with ``append_in_transaction`` so the read models (task, runs, due_work) are exactly
what projections make of them. Runs end in a realistic mix of states: most succeeded, some
dead, some waiting for an approval, a few still queued.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from domain.envelope import EventMeta
from domain.events import (
    ApprovalRequested,
    Event,
    RunDead,
    RunQueued,
    RunStarted,
    RunStepFailed,
    RunStepSucceeded,
    RunSucceeded,
    TaskCreated,
    TaskDefinition,
    TaskPaused,
    run_stream,
    task_stream,
)
from projections.base import Connection
from projections.registry import inline_projections
from services.store.events import StreamAppend, append_in_transaction

BATCH = 500
WORDS = ("report", "digest", "backup", "invoice", "reminder", "sync", "cleanup", "summary")
TEAMS = ("alpha", "billing", "growth", "ops", "platform", "support", "data", "legal")
# The word the benchmark's text search looks for: in about one title in 40.
RARE_WORD = "quarterly"
_PIPELINE = {"pipeline": [{"id": "deliver", "uses": "debug.echo", "with": {"to": "${params.to}"}}]}

Progress = Callable[[str, int, int], None]


@dataclass
class Seeded:
    """What was seeded, and an example of each thing the benchmark opens."""

    owner: str
    tasks: int = 0
    runs: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    task_id: str = ""
    run_ids: dict[str, str] = field(default_factory=dict)


def _title(n: int, rng: random.Random) -> str:
    word = RARE_WORD if n % 40 == 7 else rng.choice(WORDS)
    return f"{word.capitalize()} {n:05d} for team {rng.choice(TEAMS)}"


def _run_status(rng: random.Random) -> str:
    draw = rng.random()
    if draw < 0.04:
        return "dead"
    if draw < 0.06:
        return "awaiting_approval"
    if draw < 0.08:
        return "queued"
    return "succeeded"


def _run_events(run_id: str, task_id: str, owner: str, at: datetime, status: str) -> list[Event]:
    queued = RunQueued(run_id=run_id, task_id=task_id, owner=owner, scheduled_for=at, run_at=at)
    if status == "queued":
        return [queued]
    started = RunStarted(run_id=run_id, attempt=1, worker="bench", lease_until=at)
    if status == "awaiting_approval":
        asked = ApprovalRequested(run_id=run_id, step_id="ask", message="Send it?")
        return [queued, started, asked]
    if status == "dead":
        failed = RunStepFailed(
            run_id=run_id,
            step_id="deliver",
            attempt=1,
            tool="debug.echo",
            error="HTTP 500 from the partner",
            input={"to": "ana"},
        )
        dead = RunDead(run_id=run_id, attempt=1, error="deliver: HTTP 500 from the partner")
        return [queued, started, failed, dead]
    step = RunStepSucceeded(
        run_id=run_id,
        step_id="deliver",
        attempt=1,
        tool="debug.echo",
        input={"to": "ana"},
        output={"to": "ana"},
        duration_ms=3.0,
    )
    return [queued, started, step, RunSucceeded(run_id=run_id, attempt=1)]


async def _append(conn: Connection, appends: list[StreamAppend], owner: str) -> None:
    meta = EventMeta(actor=owner, correlation_id=str(uuid.uuid4()))
    async with conn.transaction():
        await append_in_transaction(conn, appends, meta, inline_projections())


async def seed(
    pool: asyncpg.Pool,
    owner: str,
    *,
    tasks: int,
    runs: int,
    progress: Progress | None = None,
    seed_value: int = 10,
) -> Seeded:
    """Record ``tasks`` tasks owned by ``owner`` (one in 20 paused) and ``runs`` runs spread
    evenly over them, one per hour going back from now."""
    rng = random.Random(seed_value)
    seeded = Seeded(owner=owner)
    task_ids = [str(uuid.uuid4()) for _ in range(tasks)]
    now = datetime.now(UTC).replace(microsecond=0)
    async with pool.acquire() as conn:
        for start in range(0, tasks, BATCH):
            appends = []
            for n in range(start, min(start + BATCH, tasks)):
                task_id = task_ids[n]
                definition = TaskDefinition(
                    title=_title(n, rng),
                    schedule_kind="cron",
                    schedule_expr=f"{n % 60} {n % 24} * * *",
                    timezone="Europe/Lisbon",
                    payload={**_PIPELINE, "params": {"to": "ana"}},
                )
                events: list[Event] = [
                    TaskCreated(task_id=task_id, definition=definition, next_run_at=now)
                ]
                if n % 20 == 3:
                    events.append(TaskPaused(task_id=task_id))
                appends.append(StreamAppend(task_stream(task_id), events, 0))
            await _append(conn, appends, owner)
            if progress:
                progress("tasks", min(start + BATCH, tasks), tasks)
        seeded.tasks = tasks
        for start in range(0, runs, BATCH):
            appends = []
            for n in range(start, min(start + BATCH, runs)):
                task_id = task_ids[n % tasks]
                run_id = str(uuid.uuid4())
                status = _run_status(rng)
                at = now - timedelta(hours=n // tasks + 1)
                events = _run_events(run_id, task_id, owner, at, status)
                appends.append(StreamAppend(run_stream(run_id), events, 0))
                seeded.by_status[status] = seeded.by_status.get(status, 0) + 1
                seeded.run_ids.setdefault(status, run_id)
            await _append(conn, appends, owner)
            if progress:
                progress("runs", min(start + BATCH, runs), runs)
        seeded.runs = runs
    seeded.task_id = task_ids[len(task_ids) // 2]
    return seeded
