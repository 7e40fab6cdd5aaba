"""A timer started hours after tasks fell due (the service was down): each misfire policy does
what it says, and every run it decides on completes.

The tasks are decided as the API would have decided them three hours ago (the domain takes
``now`` as an argument), recorded, and only then are `ordinaut timer` and `ordinaut worker`
started, on the real clock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest

from domain.envelope import EventMeta
from domain.events import TaskDefinition, task_stream
from domain.tasks import decide_create
from domain.timer import DEFAULT_MISFIRE_GRACE, MAX_RUN_ALL
from projections.registry import inline_projections
from services.store.events import StreamAppend, append_in_transaction
from tests.faults.support import FaultResult, db_now, drained, eventually
from tests.processes import Fleet, stop

FAULT = "late-timer"
DOWN = timedelta(hours=3)
# Tasks were created DOWN - LEAD ago, so the last occurrence before the timer starts is LEAD
# old: past the default 60 s grace however long the processes take to start.
LEAD = timedelta(minutes=5)
EVERY = 10  # minutes, for the periodic tasks: 17 occurrences fall in the outage
ECHO = {"pipeline": [{"id": "hi", "uses": "debug.echo", "with": {"at": "${run.scheduled_for}"}}]}


def _tasks(created: datetime) -> dict[str, dict[str, Any]]:
    """name -> TaskDefinition fields (UTC, so nothing depends on DST)."""
    periodic = {"schedule_kind": "rrule", "schedule_expr": f"FREQ=MINUTELY;INTERVAL={EVERY}"}
    at = (created + timedelta(hours=1)).isoformat()
    return {
        "run_once": {**periodic, "misfire_policy": "run_once"},
        "skip": {**periodic, "misfire_policy": "skip"},
        "run_all": {**periodic, "misfire_policy": "run_all"},
        "run_all_bounded": {
            "schedule_kind": "rrule",
            "schedule_expr": "FREQ=MINUTELY",
            "misfire_policy": "run_all",
        },
        "grace_covers": {
            **periodic,
            "misfire_policy": "run_once",
            "misfire_grace_seconds": int(DOWN.total_seconds()) + 3600,
        },
        "once_run_once": {"schedule_kind": "once", "schedule_expr": at},
        "once_skip": {"schedule_kind": "once", "schedule_expr": at, "misfire_policy": "skip"},
    }


async def _create_hours_ago(pool: asyncpg.Pool, created: datetime) -> dict[str, str]:
    """Record the tasks as the API decided them at ``created``; name -> task id."""
    ids, appends = {}, []
    for name, fields in _tasks(created).items():
        definition = TaskDefinition(title=name, timezone="UTC", payload=ECHO, **fields)
        ids[name] = str(uuid.uuid4())
        events = decide_create(ids[name], definition, created)
        appends.append(StreamAppend(task_stream(ids[name]), events, 0))
    meta = EventMeta(actor="admin", correlation_id=str(uuid.uuid4()))
    async with pool.acquire() as conn, conn.transaction():
        await append_in_transaction(conn, appends, meta, inline_projections())
    return ids


def _expected(created: datetime, fired: datetime) -> dict[str, tuple[list[datetime], int, int]]:
    """name -> (scheduled_for of the runs each policy must queue, how many of them are
    catch-up runs, how many occurrences it records as missed)."""
    periodic = [created + timedelta(minutes=EVERY * k) for k in range(1, 100)]
    late = [o for o in periodic if o <= fired]  # all past the grace (see LEAD)
    # Minutely: the last minute's occurrence is within the default 60 s grace, so on time.
    minutely = [created + timedelta(minutes=k) for k in range(1, 1000)]
    on_time = [o for o in minutely if timedelta(0) <= fired - o <= DEFAULT_MISFIRE_GRACE]
    overdue = [o for o in minutely if fired - o > DEFAULT_MISFIRE_GRACE]
    bounded = overdue[:MAX_RUN_ALL]
    once = created + timedelta(hours=1)
    return {
        "run_once": ([late[-1]], 1, len(late) - 1),
        "skip": ([], 0, len(late)),
        "run_all": (late, len(late), 0),
        "run_all_bounded": (bounded + on_time, len(bounded), len(overdue) - len(bounded)),
        "grace_covers": (late, 0, 0),
        "once_run_once": ([once], 1, 0),
        "once_skip": ([], 0, 1),
    }


_DECISIONS = """
SELECT e.type, e.data::text AS data, e.recorded_at FROM events e
WHERE e.type IN ('task.due', 'schedule.missed', 'task.completed') AND e.stream = $1
  AND e.meta->>'correlation_id' = $2
ORDER BY e.position
"""


async def _observed(pool: asyncpg.Pool, task_id: str, batch: str) -> dict[str, Any]:
    """What the timer recorded for a task in its first firing round (``batch``, a correlation
    id: later rounds fire what fell due since), and the state of those runs."""
    seen: dict[str, Any] = {"runs": [], "catch_up": Counter(), "missed": 0, "completed": False}
    for row in await pool.fetch(_DECISIONS, task_stream(task_id), batch):
        data = msgspec.json.decode(row["data"])
        if row["type"] == "task.due":
            seen["runs"].append(datetime.fromisoformat(data["scheduled_for"]))
            seen["catch_up"][bool(data.get("catch_up"))] += 1
        elif row["type"] == "schedule.missed":
            seen["missed"] += len(data["occurrences"])
        else:
            seen["completed"] = True
    statuses = await pool.fetch(
        "SELECT status FROM runs WHERE task_id = $1 AND scheduled_for = ANY($2::timestamptz[])",
        task_id,
        seen["runs"],
    )
    seen["statuses"] = Counter(r["status"] for r in statuses)
    seen["next_run_at"] = await pool.fetchval("SELECT next_run_at FROM task WHERE id = $1", task_id)
    return seen


@pytest.mark.timeout(180)
async def test_each_misfire_policy_after_hours_without_a_timer(
    fleet: Fleet, pool: asyncpg.Pool, fault: FaultResult
) -> None:
    # On a whole minute, as the rules' occurrences are.
    created = (await db_now(pool) - DOWN + LEAD).replace(second=0, microsecond=0)
    ids = await _create_hours_ago(pool, created)
    await asyncio.gather(fleet.start("timer"), fleet.start("worker"))
    await eventually(lambda: _decided(pool, len(ids)), 60, "the timer decided nothing")
    await eventually(lambda: drained(pool), 60, "runs did not finish:\n" + fleet.tails())
    codes = await stop(fleet.all)
    fired, batch = await _first_decision(pool)
    expected = _expected(created, fired)
    now = await db_now(pool)

    results: dict[str, str] = {}
    wrong: dict[str, Any] = {}
    for name, task_id in ids.items():
        seen = await _observed(pool, task_id, batch)
        runs, catch_up, missed = expected[name]
        ok = (
            sorted(seen["runs"]) == runs
            and seen["missed"] == missed
            and seen["catch_up"][True] == catch_up
            and set(seen["statuses"]) <= {"succeeded"}
            and sum(seen["statuses"].values()) == len(runs)
            and (seen["completed"] if name.startswith("once") else seen["next_run_at"] > now)
        )
        results[name] = f"{len(seen['runs'])} run(s) + {seen['missed']} missed"
        if not ok:
            wrong[name] = {"expected": (len(runs), missed), "seen": seen}
    fault.summary = (
        f"faults: {FAULT} timer started {DOWN.total_seconds() / 3600:.0f} h late:"
        f" {len(ids) - len(wrong)}/{len(ids)} policies applied correctly ("
        + ", ".join(f"{name} {text}" for name, text in results.items())
        + ")"
    )
    fault.figures = {
        "down_hours": DOWN.total_seconds() / 3600,
        "policies": results,
        "wrong": {k: str(v) for k, v in wrong.items()},
    }

    assert set(codes.values()) == {0}, f"{codes}\n{fleet.tails()}"
    assert wrong == {}, wrong


async def _decided(pool: asyncpg.Pool, tasks: int) -> bool:
    """Whether the timer has dealt with every task's outage."""
    decided = await pool.fetchval(
        "SELECT count(DISTINCT stream) FROM events"
        " WHERE type IN ('task.due', 'schedule.missed') AND meta->>'actor' = 'timer'"
    )
    return bool(decided == tasks)


async def _first_decision(pool: asyncpg.Pool) -> tuple[datetime, str]:
    """When the timer first fired (occurrences up to then were due), and that round's
    correlation id."""
    row = await pool.fetchrow(
        "SELECT recorded_at, meta->>'correlation_id' AS batch FROM events"
        " WHERE meta->>'actor' = 'timer' ORDER BY position LIMIT 1"
    )
    assert row is not None
    return row["recorded_at"], row["batch"]
