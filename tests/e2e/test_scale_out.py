"""Scale-out on one machine: 2 API, 2 timer, 3 worker, 1 relay and 1 notifier processes on one
database and one Redis, 500 tasks of every kind, one worker and one timer SIGKILLed midway.
Every occurrence runs once (none twice, none missed) and every event is relayed once, in order."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as redis

from services.timer.service import DEFAULT_LEAD_SECONDS
from tests.processes import (
    Process,
    environment,
    kill,
    ready,
    restarted_if_port_taken,
    start_process,
    stop,
)
from tests.relay_support import stored_positions, stream_positions
from tests.support import db_now

ADMIN = "admin-token-for-scale-out-0123456789"
LEASE_SECONDS = 3
CRON_TASKS, RRULE_TASKS, ONCE_TASKS, EVENT_TASKS = 150, 150, 100, 100
CRON_EVERY = 5  # "*/5 * * * * *": the engine's cron has a seconds field
RRULE_INTERVALS = (4, 5, 6, 7)
TOPICS = [f"scale.t{n}" for n in range(10)]
RUN_SECONDS = 30.0  # from the last task created to the timers' SIGTERM
KILL_AFTER = 10.0  # into the run phase: then one timer and one worker are SIGKILLed
CUTOFF_MARGIN = timedelta(seconds=5)  # occurrences this close to the timers' stop may not fire
PUBLISH_EVERY = 0.5
PROCESSES = {"api": 2, "timer": 2, "worker": 3, "relay": 1, "notifier": 1}


@dataclass
class Fleet:
    """Every started process, by kind, and the events stream they share."""

    stream: str
    by_kind: dict[str, list[Process]] = field(default_factory=lambda: defaultdict(list))
    began: float = field(default_factory=time.monotonic)

    @property
    def all(self) -> list[Process]:
        return [p for group in self.by_kind.values() for p in group]

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.all)


def _environment(database_url: str, redis_url: str, stream: str, data_dir: Path) -> dict[str, str]:
    return environment(database_url, redis_url, stream, data_dir, ADMIN) | {
        "ORDINAUT_WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
        "ORDINAUT_WORKER_POLL_SECONDS": "0.2",
        "ORDINAUT_WORKER_GRACE_SECONDS": "10",
    }


@pytest.fixture
async def fleet(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Fleet]:
    """Every process, started at once on one database, Redis, events stream and data dir."""
    stream = f"test-{uuid.uuid4().hex}:events"
    env = _environment(database_url, redis_url, stream, tmp_path / "data")
    started = Fleet(stream)
    try:
        for name, count in PROCESSES.items():
            for n in range(count):
                started.by_kind[name].append(start_process(name, n, env, tmp_path))
        await asyncio.gather(*(ready(p) for p in started.all))
        for group in started.by_kind.values():
            group[:] = [await restarted_if_port_taken(p, env, tmp_path) for p in group]
        yield started
    finally:
        for process in started.all:
            if process.process.poll() is None:
                process.process.kill()
                process.process.wait()
        client = redis.Redis.from_url(redis_url)
        await client.delete(stream)
        await client.aclose()


@dataclass
class Created:
    """What the test asked for, to compare with what happened."""

    # task -> (first due, period, an instant on its grid, when it was asked for and recorded)
    timed: dict[str, tuple[datetime, timedelta, datetime, datetime, datetime]] = field(
        default_factory=dict
    )
    once: dict[str, datetime] = field(default_factory=dict)
    by_topic: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    published: list[dict[str, Any]] = field(default_factory=list)  # response + topic


def _bodies(anchor: datetime) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(kind, POST /tasks body, what to remember) for every task, kinds interleaved."""
    echo = {"pipeline": [{"id": "echo", "uses": "debug.echo", "with": {"n": "${run.id}"}}]}
    base = {"payload": echo, "timezone": "UTC"}
    for n in range(CRON_TASKS):
        expr = f"*/{CRON_EVERY} * * * * *"
        yield (
            "cron",
            {**base, "title": f"cron {n}", "schedule_kind": "cron", "schedule_expr": expr},
            timedelta(seconds=CRON_EVERY),
        )
    for n in range(RRULE_TASKS):
        every = RRULE_INTERVALS[n % len(RRULE_INTERVALS)]
        yield (
            "rrule",
            {
                **base,
                "title": f"rrule {n}",
                "schedule_kind": "rrule",
                "schedule_expr": f"FREQ=SECONDLY;INTERVAL={every}",
                "dtstart": anchor.isoformat(),
            },
            timedelta(seconds=every),
        )
    for n in range(ONCE_TASKS):
        at = anchor + timedelta(seconds=8 + n % 15)
        yield (
            "once",
            {
                **base,
                "title": f"once {n}",
                "schedule_kind": "once",
                "schedule_expr": at.isoformat(),
            },
            at,
        )
    for n in range(EVENT_TASKS):
        topic = TOPICS[n % len(TOPICS)]
        yield (
            "event",
            {**base, "title": f"event {n}", "schedule_kind": "event", "schedule_expr": topic},
            topic,
        )


async def _create_tasks(clients: list[httpx.AsyncClient], anchor: datetime) -> Created:
    """POST every task, alternating between the two APIs, a few at a time."""
    created, gate = Created(), asyncio.Semaphore(8)
    bodies = list(_bodies(anchor))
    order = [
        i
        for pair in itertools.zip_longest(*(range(k, len(bodies), 4) for k in range(4)))
        for i in pair
        if i is not None
    ]

    async def create(i: int) -> None:
        kind, body, remember = bodies[i]
        async with gate:
            sent = datetime.now(UTC)  # the database runs on this machine's clock
            response = await clients[i % 2].post("/tasks", json=body)
        assert response.status_code == 201, response.text
        task = response.json()
        if kind in ("cron", "rrule"):
            first = datetime.fromisoformat(task["next_run_at"])
            grid = anchor.replace(second=0) if kind == "cron" else anchor
            at = datetime.fromisoformat(task["created_at"])
            created.timed[task["id"]] = (first, remember, grid, sent, at)
        elif kind == "once":
            created.once[task["id"]] = remember
        else:
            created.by_topic[remember].add(task["id"])

    await asyncio.gather(*(create(i) for i in order))
    return created


async def _publish(clients: list[httpx.AsyncClient], created: Created, stop: asyncio.Event) -> None:
    """POST /events through both APIs in turn until ``stop``; one in five fires nothing."""
    for n in itertools.count():
        topic = "scale.nobody" if n % 5 == 4 else TOPICS[n % len(TOPICS)]
        response = await clients[n % 2].post("/events", json={"topic": topic, "payload": {"n": n}})
        assert response.status_code == 202, response.text
        created.published.append({"topic": topic, **response.json()})
        try:
            await asyncio.wait_for(stop.wait(), PUBLISH_EVERY)
            return
        except TimeoutError:
            pass


async def _kill_midway(fleet: Fleet, pool: asyncpg.Pool) -> tuple[list[Process], list[str]]:
    """SIGKILL a timer as a cron burst falls due, then a worker while it holds leases (a
    burst's runs take it a moment); returns the killed and the runs it left leased."""
    timer, worker = fleet.by_kind["timer"][0], fleet.by_kind["worker"][0]
    now = await db_now(pool)
    # Timers fire a burst DEFAULT_LEAD_SECONDS before it falls due: kill one as it fires.
    into = (now.second % CRON_EVERY + now.microsecond / 1e6 + DEFAULT_LEAD_SECONDS) % CRON_EVERY
    await asyncio.sleep(CRON_EVERY - into)
    await kill(timer)
    mine = f"%-{worker.process.pid}-%"
    deadline = time.monotonic() + 2 * CRON_EVERY
    held: list[str] = []
    while not held and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
        held = [row["run_id"] for row in await pool.fetch(_LEASED, mine)]
    await kill(worker)
    return [timer, worker], [row["run_id"] for row in await pool.fetch(_LEASED, mine)]


_LEASED = "SELECT run_id FROM due_work WHERE locked_by LIKE $1 AND locked_until > now()"


async def _eventually(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.25)


@pytest.mark.timeout(240)
async def test_scaled_out_processes_run_each_occurrence_once_through_kills(
    fleet: Fleet, pool: asyncpg.Pool, redis_url: str
) -> None:
    apis = [
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{p.api_port}",
            timeout=30,
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        for p in fleet.by_kind["api"]
    ]
    try:
        anchor = (await db_now(pool)).replace(microsecond=0)
        created = await _create_tasks(apis, anchor)
        stop_publishing = asyncio.Event()
        publisher = asyncio.create_task(_publish(apis, created, stop_publishing))
        await asyncio.sleep(KILL_AFTER)
        killed, orphaned = await _kill_midway(fleet, pool)
        await asyncio.sleep(RUN_SECONDS - KILL_AFTER - CRON_EVERY)
        stop_publishing.set()
        await publisher
    finally:
        for client in apis:
            await client.aclose()
    survivors = [p for p in fleet.all if p not in killed]
    # Taken before the timers are told to stop: on a loaded machine stopping them can take
    # longer than the margin, and occurrences due after they stopped never fire.
    cutoff = await db_now(pool) - CUTOFF_MARGIN
    codes = await stop([p for p in survivors if p.name in ("api", "timer")])
    await _eventually(lambda: _drained(pool), 60, "runs did not drain:\n" + fleet.logs())
    codes |= await stop([p for p in survivors if p.name in ("worker", "notifier")])
    logged = await stored_positions(pool)  # the log, in its order (txid, position)
    last = len(logged)
    client = redis.Redis.from_url(redis_url)
    try:
        await _eventually(lambda: _relayed(client, fleet.stream, last), 30, "relay fell behind")
        codes |= await stop(fleet.by_kind["relay"])
        positions = await stream_positions(client, fleet.stream)
    finally:
        await client.aclose()
    assert set(codes.values()) == {0}, f"{codes}\n{fleet.logs()}"

    runs = await _check_runs(pool, created, cutoff)
    assert positions == logged, "the events stream is not the log, once, in order"
    assert await pool.fetchval("SELECT count(*) FROM events") == last
    resumed = {row["run_id"] for row in await pool.fetch(_RESUMED)}
    assert orphaned, "the worker was killed holding no leases: its takeover went untested"
    assert set(orphaned) <= resumed, "a killed worker's run was not taken over"
    print(
        f"\nscale-out: tasks={len(_all_tasks(created))} runs={runs} resumed={len(resumed)}"
        f" (killed worker held {len(orphaned)}) events={last}"
        f" published={len(created.published)} relayed={len(positions)}"
        f" duration={time.monotonic() - fleet.began:.1f}s"
    )


# Runs started twice: the killed worker held them, another finished them.
_RESUMED = """
SELECT substr(stream, 5) AS run_id FROM events WHERE type = 'run.started'
GROUP BY stream HAVING count(*) > 1
"""


def _all_tasks(created: Created) -> set[str]:
    return set(created.timed) | set(created.once) | set().union(*created.by_topic.values())


async def _drained(pool: asyncpg.Pool) -> bool:
    unfinished = await pool.fetchval("SELECT count(*) FROM runs WHERE status <> 'succeeded'")
    return unfinished == 0 and await pool.fetchval("SELECT count(*) FROM due_work") == 0


async def _relayed(client: redis.Redis, stream: str, count: int) -> bool:
    return int(await client.xlen(stream)) >= count


async def _check_runs(pool: asyncpg.Pool, created: Created, cutoff: datetime) -> int:
    """No run twice, none missing; returns how many runs there were."""
    rows = await pool.fetch(
        "SELECT r.run_id, r.task_id, r.trigger, r.status, r.scheduled_for,"
        "       r.queued->'event'->>'event_id' AS event_id,"
        "       count(*) FILTER (WHERE e.type = 'run.succeeded') AS succeeded,"
        "       count(*) FILTER (WHERE e.type = 'run.step_succeeded') AS steps"
        " FROM runs r JOIN events e ON e.stream = 'run-' || r.run_id"
        " GROUP BY r.run_id"
    )
    assert {r["status"] for r in rows} == {"succeeded"}
    assert {r["trigger"] for r in rows} == {"schedule", "event"}
    assert [r["run_id"] for r in rows if r["succeeded"] != 1] == [], "not one run.succeeded"
    assert [r["run_id"] for r in rows if r["steps"] != 1] == [], "a step was recorded twice"
    scheduled = Counter(
        (r["task_id"], r["scheduled_for"]) for r in rows if r["trigger"] == "schedule"
    )
    assert [key for key, n in scheduled.items() if n > 1] == [], "an occurrence ran twice"
    dues = await pool.fetchval("SELECT count(*) FROM events WHERE type = 'task.due'")
    assert dues == sum(scheduled.values())
    _check_timed(created, cutoff, scheduled)
    _check_events(created, rows)
    return len(rows)


def _check_timed(
    created: Created, cutoff: datetime, scheduled: Counter[tuple[str, datetime]]
) -> None:
    missing = []
    for task_id, (first, every, grid, sent, created_at) in created.timed.items():
        assert (first - grid) % every == timedelta(0), "off the schedule's grid"
        # The API decides next_run_at between the request and the commit (which may wait for
        # the append lock while a timer fires a burst): the next occurrence after that moment.
        assert sent < first, "the first occurrence is before the task was asked for"
        assert first - every <= created_at, "the first occurrence was skipped"
        occurrence = first
        while occurrence <= cutoff:
            if (task_id, occurrence) not in scheduled:
                missing.append((task_id, occurrence))
            occurrence += every
    for task_id, at in created.once.items():
        assert at <= cutoff, "a once task is due too late for the test to see it"
        if (task_id, at) not in scheduled:
            missing.append((task_id, at))
    assert missing == [], f"{len(missing)} occurrences never ran, e.g. {missing[:5]}"
    fired = Counter(task_id for task_id, _ in scheduled)
    for task_id in created.timed:
        assert fired[task_id] >= 3, (task_id, fired[task_id])
    assert all(fired[task_id] == 1 for task_id in created.once)


def _check_events(created: Created, rows: list[asyncpg.Record]) -> None:
    fired = Counter((r["event_id"], r["task_id"]) for r in rows if r["trigger"] == "event")
    assert [key for key, n in fired.items() if n > 1] == [], "an event fired a task twice"
    expected = set()
    for event in created.published:
        subscribers = created.by_topic.get(event["topic"], set())
        assert set(event["triggered_tasks"]) == subscribers, event["topic"]
        expected |= {(event["id"], task_id) for task_id in subscribers}
    assert set(fired) == expected
