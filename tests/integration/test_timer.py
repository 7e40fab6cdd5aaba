"""The timer against real Postgres: fires on time, never twice, honours misfire policies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import pytest

from domain.events import TaskDefinition
from services.timer.service import Timer
from tests.support import PROJECTIONS, create_tasks, db_now, every_second, fired
from tests.workers import eventually, running_workers


@asynccontextmanager
async def running(*timers: Timer) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(t.run(stop)) for t in timers]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


@pytest.mark.timeout(120)
async def test_two_timers_in_one_process_fire_every_occurrence_once(
    pool: asyncpg.Pool,
) -> None:
    start = (await db_now(pool)).replace(microsecond=0) + timedelta(seconds=2)
    ids = await create_tasks(pool, [every_second() for _ in range(200)], start)
    async with running(Timer(pool, PROJECTIONS), Timer(pool, PROJECTIONS)):
        await asyncio.sleep((start - await db_now(pool)).total_seconds() + 3.5)
    by_task = await fired(pool)
    assert set(by_task) == set(ids)
    last = max(max(times) for times in by_task.values())
    expected_seconds = int((last - start).total_seconds()) + 1
    assert expected_seconds >= 3
    for times in by_task.values():
        # Consecutive seconds from the start: nothing twice, nothing skipped.
        assert len(times) == len(set(times))
        assert sorted(times)[: expected_seconds - 1] == [
            start + timedelta(seconds=n) for n in range(expected_seconds - 1)
        ]
    due_work = await pool.fetchval("SELECT count(*) FROM due_work")
    assert due_work == sum(len(t) for t in by_task.values())


async def test_a_sleeping_timer_wakes_for_a_new_task_at_once(pool: asyncpg.Pool) -> None:
    async with running(Timer(pool, PROJECTIONS)):
        await asyncio.sleep(0.5)  # the timer is asleep now, with nothing scheduled
        soon = await db_now(pool) + timedelta(seconds=1)
        once = TaskDefinition(title="once", schedule_kind="once", schedule_expr=soon.isoformat())
        (task_id,) = await create_tasks(pool, [once], soon)
        await asyncio.sleep(2.0)
    assert [t for t in (await fired(pool))[task_id]] == [soon]
    status = await pool.fetchval("SELECT status FROM task WHERE id = $1", task_id)
    assert status == "completed"


async def test_a_timer_with_a_lead_queues_the_run_ahead_due_at_its_own_instant(
    pool: asyncpg.Pool,
) -> None:
    due = (await db_now(pool)).replace(microsecond=0) + timedelta(seconds=30)
    once = TaskDefinition(title="once", schedule_kind="once", schedule_expr=due.isoformat())
    (task_id,) = await create_tasks(pool, [once], due)
    timer = Timer(pool, PROJECTIONS, lead_seconds=120)
    assert await timer.fire_due() == 1
    assert await timer.fire_due() == 0  # fired once; the task is complete
    row = await pool.fetchrow(
        "SELECT (data->>'fired_at')::timestamptz AS fired_at,"
        " (data->>'scheduled_for')::timestamptz AS scheduled_for,"
        " (data->>'run_at')::timestamptz AS run_at FROM events WHERE type = 'task.due'"
    )
    assert row is not None
    assert row["scheduled_for"] == row["run_at"] == due
    assert row["fired_at"] < due  # ahead of the due instant, as the lead allows
    run_at = await pool.fetchval("SELECT run_at FROM due_work")
    assert run_at == due  # no worker may lease it before then (`due_work.run_at <= now`)
    status = await pool.fetchval("SELECT status FROM task WHERE id = $1", task_id)
    assert status == "completed"


async def test_occurrences_within_half_the_lead_share_one_firing(pool: asyncpg.Pool) -> None:
    """The timer wakes half the lead before the next occurrence and fires all due within the
    lead: occurrences close together go in one transaction, each at least half the lead and at
    most the lead ahead of its instant."""
    lead = 2.0
    first = (await db_now(pool)) + timedelta(seconds=2.5)
    dues = [first + timedelta(seconds=offset) for offset in (0.0, 0.3, 0.8)]
    definitions = [
        TaskDefinition(title="once", schedule_kind="once", schedule_expr=due.isoformat())
        for due in dues
    ]
    for definition, due in zip(definitions, dues, strict=True):
        await create_tasks(pool, [definition], due)
    async with running(Timer(pool, PROJECTIONS, lead_seconds=lead)):
        await asyncio.sleep((dues[-1] - await db_now(pool)).total_seconds())
    rows = await pool.fetch(
        "SELECT (data->>'fired_at')::timestamptz AS fired_at,"
        " (data->>'scheduled_for')::timestamptz AS due, meta->>'correlation_id' AS firing"
        " FROM events WHERE type = 'task.due' ORDER BY position"
    )
    assert [row["due"] for row in rows] == dues
    assert len({row["firing"] for row in rows}) == 1
    for row in rows:
        ahead = (row["due"] - row["fired_at"]).total_seconds()
        # at least half the lead ahead, give or take the timer waking late on a busy machine
        assert lead / 2 - 0.5 <= ahead <= lead


async def test_a_timer_without_a_lead_leaves_a_task_due_later_alone(pool: asyncpg.Pool) -> None:
    due = (await db_now(pool)).replace(microsecond=0) + timedelta(seconds=30)
    once = TaskDefinition(title="once", schedule_kind="once", schedule_expr=due.isoformat())
    await create_tasks(pool, [once], due)
    assert await Timer(pool, PROJECTIONS, lead_seconds=0).fire_due() == 0
    assert await Timer(pool, PROJECTIONS, lead_seconds=0).fire_due(check=False) == 0
    assert await pool.fetchval("SELECT count(*) FROM due_work") == 0


@pytest.mark.parametrize("policy", ["run_once", "skip", "run_all"])
async def test_after_downtime_each_misfire_policy_does_what_it_says(
    pool: asyncpg.Pool, policy: str
) -> None:
    # The timer was down: five per-minute occurrences are due and long past their grace.
    # Not within seconds of a minute's turn: an occurrence due then would be on time (within
    # its grace, or inside the timer's lead) rather than late, and the counts below assume
    # the newest due occurrence is late.
    now = await db_now(pool)
    if not 3 <= now.second <= 55:
        await asyncio.sleep((63 - now.second) % 60 - now.microsecond / 1e6)
        now = await db_now(pool)
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=5)
    definition = TaskDefinition(
        title="report",
        schedule_kind="cron",
        schedule_expr="* * * * *",
        misfire_policy=policy,
        misfire_grace_seconds=1,  # type: ignore[arg-type]
    )
    (task_id,) = await create_tasks(pool, [definition], first)
    assert await Timer(pool, PROJECTIONS).fire_due() == 1
    fired_at = await pool.fetchval("SELECT max(recorded_at) FROM events")
    late = sum(
        1 for n in range(7) if fired_at - (first + timedelta(minutes=n)) > timedelta(seconds=1)
    )
    assert late >= 5
    runs, missed = {"run_once": (1, late - 1), "skip": (0, late), "run_all": (late, 0)}[policy]

    dues = await pool.fetch("SELECT data FROM events WHERE type = 'task.due'")
    misses = await pool.fetch("SELECT data FROM events WHERE type = 'schedule.missed'")
    recorded = [o for row in misses for o in json.loads(row["data"])["occurrences"]]
    assert len(dues) == runs
    assert len(recorded) == missed
    assert await pool.fetchval("SELECT count(*) FROM due_work") == runs
    next_run_at = await pool.fetchval("SELECT next_run_at FROM task WHERE id = $1", task_id)
    assert next_run_at > now
    assert await Timer(pool, PROJECTIONS).fire_due() == 0  # nothing more is due


@pytest.mark.timeout(120)
async def test_a_run_fired_ahead_starts_at_its_due_instant_not_before(
    pool: asyncpg.Pool, database_url: str, redis_url: str
) -> None:
    due = (await db_now(pool)).replace(microsecond=0) + timedelta(seconds=3)
    echo = {"pipeline": [{"id": "e", "uses": "debug.echo", "with": {"n": 1}}]}
    once = TaskDefinition(
        title="once", schedule_kind="once", schedule_expr=due.isoformat(), payload=echo
    )
    (task_id,) = await create_tasks(pool, [once], due)
    timer = Timer(pool, PROJECTIONS, lead_seconds=60)
    async with running_workers(database_url, redis_url):
        assert await timer.fire_due() == 1  # fired now, ahead of its instant
        run = await eventually(
            lambda: pool.fetchrow(
                "SELECT status, scheduled_for, started_at FROM runs"
                " WHERE task_id = $1 AND status = 'succeeded'",
                task_id,
            ),
            within=60,
        )
    fired_at = await pool.fetchval(
        "SELECT (data->>'fired_at')::timestamptz FROM events WHERE type = 'task.due'"
    )
    assert fired_at < due == run["scheduled_for"]
    assert run["started_at"] >= due  # the worker waited for the due instant
