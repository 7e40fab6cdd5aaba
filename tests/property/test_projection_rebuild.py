"""Rebuilding the read models from the log yields exactly the tables the inline appends built."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.envelope import EventMeta
from domain.events import (
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    Event,
    EventReceived,
    RunAttemptFailed,
    RunCanceled,
    RunCancelRequested,
    RunDead,
    RunDebounced,
    RunDeduplicated,
    RunQueued,
    RunRerunRequested,
    RunResumed,
    RunStarted,
    RunStepFailed,
    RunStepSkipped,
    RunStepSucceeded,
    RunSucceeded,
    RunWaiting,
    RunWaitTimedOut,
    ScheduleKind,
    ScheduleMissed,
    TaskCanceled,
    TaskCompleted,
    TaskCreated,
    TaskDefinition,
    TaskDeleted,
    TaskDue,
    TaskPaused,
    TaskResumed,
    TaskSnoozed,
    TaskUpdated,
    run_stream,
    task_stream,
)
from projections.base import Connection
from projections.rebuild import rebuild
from projections.registry import inline_projections
from services.store.events import StreamAppend, append_in_transaction
from tests.support import fresh_database

PROJECTIONS = inline_projections()
TABLES = tuple(dict.fromkeys(t for p in PROJECTIONS.projections for t in p.tables))
TASK_IDS = ("t-1", "t-2", "t-3", "t-4")
ACTORS = ("alice", "bob", "scheduler")
ZONES = ("UTC", "Europe/Chisinau", "America/New_York", "Asia/Kolkata")
FIRST_OCCURRENCE = datetime(2030, 1, 1, tzinfo=UTC)
# Each example clones a database (~0.3 s), so 30 examples keep the file at about 15 s.
SETTINGS = settings(max_examples=30, deadline=None, database=None)

# Which commands make sense in each task state ("deleted" is final: nothing follows it).
ALLOWED: dict[str | None, tuple[str, ...]] = {
    None: ("create",),
    "active": ("update", "pause", "snooze", "fire", "miss", "cancel", "complete", "delete"),
    "paused": ("update", "resume", "cancel", "delete"),
    "canceled": ("delete",),
    "completed": ("delete",),
    "deleted": (),
}
STATE_AFTER = {
    "create": "active",
    "pause": "paused",
    "resume": "active",
    "cancel": "canceled",
    "complete": "completed",
    "delete": "deleted",
}
KINDS: tuple[ScheduleKind, ...] = ("cron", "rrule", "once")
EXPRESSIONS = {
    "cron": st.sampled_from(["*/5 * * * *", "0 9 * * MON-FRI", "30 2 1 * *"]),
    "rrule": st.sampled_from(["FREQ=DAILY;COUNT=3", "FREQ=WEEKLY;BYDAY=MO,WE", "FREQ=HOURLY"]),
    "once": st.just("2031-05-04T10:00:00Z"),
}


@dataclass(frozen=True)
class Command:
    """One append: events in order, each with its stream, caused by one actor."""

    actor: str
    events: tuple[tuple[str, Event], ...]
    idempotency_key: str | None = None


@dataclass
class Model:
    """What the generator knows about each task, so it only emits events that make sense."""

    states: dict[str, str] = field(default_factory=dict)
    definitions: dict[str, TaskDefinition] = field(default_factory=dict)
    fired: dict[str, int] = field(default_factory=dict)
    # run id -> (state, attempt, the run.queued that started it)
    runs: dict[str, tuple[str, int, RunQueued]] = field(default_factory=dict)

    def due_work(self) -> int:
        """Runs that hold a due_work row: waiting, running, or parked with a deadline."""
        return sum(
            state in ("queued", "running", "parked_deadline", "waiting_deadline")
            for state, _, _ in self.runs.values()
        )


# --- strategies ---------------------------------------------------------------------------

# Postgres text and jsonb refuse NUL, and lone surrogates are not valid UTF-8.
texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
# Whole-minute UTC offsets only: see test_a_sub_minute_utc_offset_survives_a_rebuild.
instants = st.datetimes(
    datetime(2024, 1, 1),
    datetime(2040, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=9.5))]),
)
maybe_instants = st.none() | instants
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), texts)


@st.composite
def definitions(draw: st.DrawFn, task_id: str) -> TaskDefinition:
    kind = draw(st.sampled_from(KINDS))
    return TaskDefinition(
        title=draw(texts.filter(str.strip)),
        schedule_kind=kind,
        schedule_expr=draw(EXPRESSIONS[kind]),
        timezone=draw(st.sampled_from(ZONES)),
        description=draw(st.none() | texts),
        payload=draw(st.dictionaries(texts, scalars, max_size=3)),
        priority=draw(st.integers(1, 9)),
        key=draw(st.sampled_from([None, f"key-{task_id}"])),
        max_retries=draw(st.integers(0, 10)),
        dtstart=draw(maybe_instants),
        jitter_seconds=draw(st.integers(0, 60)),
        metadata=draw(st.dictionaries(texts, texts, max_size=2)),
    )


def _changed(old: TaskDefinition, new: TaskDefinition) -> tuple[str, ...]:
    return tuple(f for f in new.__struct_fields__ if getattr(old, f) != getattr(new, f))


def _fire(draw: st.DrawFn, model: Model, task_id: str) -> TaskDue:
    """The timer's event; occurrences of one task are distinct, as the timer promises."""
    n = model.fired[task_id] = model.fired.get(task_id, 0) + 1
    scheduled_for = FIRST_OCCURRENCE + timedelta(minutes=n)
    return TaskDue(
        task_id=task_id,
        run_id=f"run-{task_id}-{n}",
        scheduled_for=scheduled_for,
        fired_at=scheduled_for,
        run_at=scheduled_for + timedelta(seconds=draw(st.integers(0, 60))),
        next_run_at=draw(maybe_instants),
        priority=model.definitions[task_id].priority,
        concurrency_key=draw(st.sampled_from([None, "mailer"])),
        catch_up=draw(st.booleans()),
    )


def _event(draw: st.DrawFn, model: Model, task_id: str, command: str) -> Event:
    match command:
        case "create":
            new = model.definitions[task_id] = draw(definitions(task_id))
            return TaskCreated(task_id=task_id, definition=new, next_run_at=draw(maybe_instants))
        case "update":
            old, new = model.definitions[task_id], draw(definitions(task_id))
            model.definitions[task_id] = new
            return TaskUpdated(
                task_id=task_id,
                definition=new,
                changed=_changed(old, new),
                next_run_at=draw(maybe_instants),
            )
        case "resume":
            when, catch_up = draw(maybe_instants), draw(st.booleans())
            return TaskResumed(task_id=task_id, next_run_at=when, catch_up=catch_up)
        case "snooze":
            return TaskSnoozed(task_id=task_id, until=draw(instants))
        case "fire":
            return _fire(draw, model, task_id)
        case "miss":
            return ScheduleMissed(
                task_id=task_id,
                occurrences=tuple(draw(st.lists(instants, max_size=3))),
                policy=draw(st.sampled_from(["skip", "run_once", "run_all"])),
                more=draw(st.booleans()),
                next_run_at=draw(maybe_instants),
            )
        case "pause":
            return TaskPaused(task_id=task_id)
        case "cancel":
            return TaskCanceled(task_id=task_id)
        case "complete":
            return TaskCompleted(task_id=task_id)
    return TaskDeleted(task_id=task_id)


def _queued(draw: st.DrawFn, model: Model, due: TaskDue) -> RunQueued:
    queued = RunQueued(
        run_id=due.run_id,
        task_id=due.task_id,
        owner=draw(st.sampled_from(ACTORS)),
        scheduled_for=due.scheduled_for,
        run_at=due.run_at,
        priority=due.priority,
        concurrency_key=due.concurrency_key,
        max_concurrency=draw(st.integers(1, 3)),
        dedupe_key=draw(st.sampled_from([None, "daily"])),
        dedupe_window_seconds=draw(st.sampled_from([None, 3600])),
        event=draw(st.none() | st.dictionaries(texts, scalars, max_size=2)),
        rerun_of=draw(st.sampled_from([None, "run-original"])),
        debounce_key=draw(st.sampled_from([None, "", "user-1"])),
    )
    model.runs[due.run_id] = ("queued", 1, queued)
    return queued


# Which run events make sense in each run state, and the state each leaves the run in.
RUN_MOVES: dict[str, tuple[str, ...]] = {
    "queued": ("start", "cancel", "dedupe", "debounce"),
    "running": (
        "step_ok",
        "step_failed",
        "step_skipped",
        "succeed",
        "fail_attempt",
        "die",
        "cancel_request",
        "cancel",
        "park",
        "park_deadline",
        "wait",
        "wait_deadline",
    ),
    "parked": ("approve", "reject", "cancel"),
    "parked_deadline": ("approve", "reject", "cancel"),
    "waiting": ("resume", "time_out", "cancel"),
    "waiting_deadline": ("resume", "time_out", "cancel"),
    "dead": ("retry", "rerun"),
    "succeeded": ("rerun",),
    "canceled": ("rerun",),
    "deduplicated": (),
}


def _run_event(draw: st.DrawFn, model: Model, run_id: str, move: str) -> Event:
    state, attempt, queued = model.runs[run_id]
    step = draw(st.sampled_from(["fetch", "notify", "each[0].send"]))
    after, event = state, None
    match move:
        case "start":
            after = "running"
            event = RunStarted(
                run_id=run_id,
                attempt=attempt,
                worker="w-1",
                lease_until=draw(instants),
                resumed=draw(st.booleans()),
            )
        case "step_ok":
            event = RunStepSucceeded(
                run_id=run_id,
                step_id=step,
                attempt=attempt,
                tool="debug.echo",
                input=draw(scalars),
                output=draw(scalars),
                duration_ms=1.5,
            )
        case "step_failed":
            event = RunStepFailed(
                run_id=run_id,
                step_id=step,
                attempt=attempt,
                tool="http.request",
                error=draw(texts),
                continued=draw(st.booleans()),
            )
        case "step_skipped":
            event = RunStepSkipped(run_id=run_id, step_id=step, attempt=attempt, condition="x")
        case "succeed":
            after, event = "succeeded", RunSucceeded(run_id=run_id, attempt=attempt)
        case "fail_attempt":
            after, attempt = "queued", attempt + 1
            event = RunAttemptFailed(
                run_id=run_id, attempt=attempt - 1, error=draw(texts), retry_at=draw(instants)
            )
        case "die":
            after, event = "dead", RunDead(run_id=run_id, attempt=attempt, error=draw(texts))
        case "cancel_request":
            event = RunCancelRequested(run_id=run_id, reason=draw(st.none() | texts))
        case "cancel":
            after, event = "canceled", RunCanceled(run_id=run_id, reason=draw(st.none() | texts))
        case "dedupe":
            event = RunDeduplicated(run_id=run_id, dedupe_key="daily", duplicate_of="run-x")
            after = "deduplicated"
        case "park" | "park_deadline":
            deadline = draw(instants) if move == "park_deadline" else None
            after = "parked_deadline" if deadline else "parked"
            event = ApprovalRequested(
                run_id=run_id,
                step_id=step,
                message=draw(texts),
                data=draw(scalars),
                expires_at=deadline,
            )
        case "wait" | "wait_deadline":
            deadline = draw(instants) if move == "wait_deadline" else None
            after = "waiting_deadline" if deadline else "waiting"
            event = RunWaiting(
                run_id=run_id,
                step_id=step,
                attempt=attempt,
                kind=draw(st.sampled_from(["event", "sleep"])),
                tool="orchestrator.wait_for_event",
                input=draw(scalars),
                topic=draw(st.none() | texts),
                filter=draw(st.none() | texts),
                scope=draw(st.dictionaries(texts, scalars, max_size=2)),
                until=deadline,
                on_timeout=draw(st.sampled_from(["fail", "default"])),
                default=draw(scalars),
                since_position=draw(st.integers(0, 100)),
            )
        case "resume":
            after = "queued"
            event = RunResumed(
                run_id=run_id,
                step_id=step,
                output=draw(scalars),
                reason=draw(st.sampled_from(["event", "woke"])),
            )
        case "time_out":
            after = "queued"
            event = RunWaitTimedOut(
                run_id=run_id, step_id=step, failed=draw(st.booleans()), output=draw(scalars)
            )
        case "debounce":
            event = RunDebounced(
                run_id=run_id,
                event=draw(st.dictionaries(texts, scalars, max_size=2)),
                count=draw(st.integers(2, 50)),
            )
        case "rerun":
            event = RunRerunRequested(run_id=run_id, rerun_id=draw(texts), from_step=step)
        case "approve":
            after = "queued"
            event = ApprovalGranted(
                run_id=run_id,
                step_id=step,
                comment=draw(st.none() | texts),
                approved_items=draw(st.lists(scalars, max_size=2)),
            )
        case "reject":
            after = "queued"
            event = ApprovalRejected(run_id=run_id, step_id=step, expired=draw(st.booleans()))
        case _:  # retry
            after, attempt = "queued", attempt + 1
            event = msgspec.structs.replace(
                queued, attempt=attempt, trigger="retry", run_at=draw(instants)
            )
    model.runs[run_id] = (after, attempt, queued)
    assert event is not None
    return event


def _step(draw: st.DrawFn, model: Model) -> list[tuple[str, Event]]:
    """Events that make sense now: a task command, a run moving on, or an unrelated event."""
    task_id = draw(st.sampled_from(TASK_IDS))
    movable = sorted(run for run, (state, _, _) in model.runs.items() if RUN_MOVES[state])
    extra = ("publish", "run") if movable else ("publish",)
    command = draw(st.sampled_from((*ALLOWED[model.states.get(task_id)], *extra)))
    if command == "publish":
        topic = draw(st.sampled_from(["orders.new", "build.done"]))
        return [("inbox", EventReceived(event_id=str(uuid.uuid4()), topic=topic, payload={}))]
    if command == "run":
        run_id = draw(st.sampled_from(movable))
        move = draw(st.sampled_from(RUN_MOVES[model.runs[run_id][0]]))
        return [(run_stream(run_id), _run_event(draw, model, run_id, move))]
    event = _event(draw, model, task_id, command)
    if command in STATE_AFTER:
        model.states[task_id] = STATE_AFTER[command]
    if isinstance(event, TaskDue):
        return [
            (task_stream(task_id), event),
            (run_stream(event.run_id), _queued(draw, model, event)),
        ]
    return [(task_stream(task_id), event)]


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Command], Model]:
    """Commands of one to three events each, and the model of where they leave the tasks."""
    model = Model()
    commands = []
    for index in range(draw(st.integers(1, 14))):
        size = draw(st.sampled_from([1, 1, 1, 2, 3]))
        events = tuple(e for _ in range(size) for e in _step(draw, model))
        key = draw(st.sampled_from([None, f"cmd-{index}"]))
        commands.append(Command(draw(st.sampled_from(ACTORS)), events, key))
    return commands, model


# --- database -----------------------------------------------------------------------------


async def append_all(conn: Connection, commands: list[Command]) -> None:
    """Append each command as the service would: one transaction, inline projections."""
    versions: dict[str, int] = {}
    for command in commands:
        by_stream: dict[str, list[Event]] = {}
        for stream, event in command.events:
            by_stream.setdefault(stream, []).append(event)
        appends = [StreamAppend(s, e, versions.get(s, 0)) for s, e in by_stream.items()]
        meta = EventMeta(
            actor=command.actor,
            correlation_id=str(uuid.uuid4()),
            idempotency_key=command.idempotency_key,
        )
        async with conn.transaction():
            result = await append_in_transaction(conn, appends, meta, PROJECTIONS)
        versions.update(result.versions)


Rows = list[dict[str, Any]]


async def snapshot(conn: Connection) -> dict[str, Rows]:
    """Every column of every row of every projection table (checkpoints are the rebuild's
    alone now: appends do not write that shared row)."""
    tables = TABLES
    # Table names come from our own projections, not from input.
    fetched = {table: await conn.fetch(f"SELECT * FROM {table}") for table in tables}
    return {
        table: sorted((dict(row) for row in rows), key=lambda row: repr(list(row.values())))
        for table, rows in fetched.items()
    }


async def rebuild_once(conn: Connection, batch: int) -> tuple[int, list[tuple[int, int]]]:
    """Rebuild the inline projections; how many events it replayed and its progress calls."""
    calls: list[tuple[int, int]] = []
    replayed = await rebuild(
        conn,
        PROJECTIONS,
        batch=batch,
        progress=lambda done, total: calls.append((done, total)),
    )
    return replayed, calls


async def assert_rebuild_reproduces(conn: Connection, batch: int) -> dict[str, Rows]:
    """Rebuild twice; both times the tables must equal the inline-built ones."""
    inline = await snapshot(conn)
    count = int(await conn.fetchval("SELECT count(*) FROM events"))
    batches = [(min(n * batch, count), count) for n in range(1, math.ceil(count / batch) + 1)]
    for _ in range(2):
        assert await rebuild_once(conn, batch) == (count, batches)
        assert await snapshot(conn) == inline
    rows = await conn.fetch("SELECT * FROM projection_checkpoints")
    return {**inline, "projection_checkpoints": [dict(row) for row in rows]}


# --- tests --------------------------------------------------------------------------------


@SETTINGS
@given(history=histories(), batch=st.integers(1, 5))
async def test_rebuild_yields_the_inline_built_tables(
    postgres_url: str, template_database: str, history: tuple[list[Command], Model], batch: int
) -> None:
    commands, model = history
    async with fresh_database(postgres_url, template_database) as conn:
        await append_all(conn, commands)
        tables = await assert_rebuild_reproduces(conn, batch)
    # The inline tables must follow the model too, so that both cannot agree on a wrong answer.
    tasks = {t["id"]: t for t in tables["task"]}
    expected = {task_id: (state == "deleted", state) for task_id, state in model.states.items()}
    assert tasks.keys() == expected.keys()
    for task_id, (deleted, state) in expected.items():
        assert tasks[task_id]["deleted"] == deleted
        assert deleted or tasks[task_id]["status"] == state
    assert len(tables["due_work"]) == model.due_work()
    runs = {r["run_id"]: r["status"] for r in tables["runs"]}
    expected_runs = {run: state for run, (state, _, _) in model.runs.items()}
    shown = {"parked": "awaiting_approval", "waiting": "waiting"}
    assert runs == {
        run: shown.get(state.removesuffix("_deadline"), state)
        for run, state in expected_runs.items()
    }
    total = sum(len(c.events) for c in commands)
    assert {c["position"] for c in tables["projection_checkpoints"]} == {total}


def definition(title: str, *, key: str | None = None, priority: int = 5) -> TaskDefinition:
    return TaskDefinition(
        title=title, schedule_kind="cron", schedule_expr="0 9 * * *", key=key, priority=priority
    )


AT = datetime(2030, 1, 1, 9, tzinfo=UTC)
DUE = TaskDue(
    task_id="a",
    run_id="run-1",
    scheduled_for=AT,
    fired_at=AT,
    run_at=AT,
    next_run_at=AT + timedelta(days=1),
)
FIXED_HISTORY = [
    Command(
        "alice",
        (
            (
                "task-a",
                TaskCreated(task_id="a", definition=definition("A", key="a"), next_run_at=AT),
            ),
            ("task-b", TaskCreated(task_id="b", definition=definition("B"))),
        ),
    ),
    Command(
        "scheduler",
        (
            ("task-a", DUE),
            (
                "run-run-1",
                RunQueued(run_id="run-1", task_id="a", owner="alice", scheduled_for=AT, run_at=AT),
            ),
        ),
    ),
    Command("bob", (("task-a", TaskPaused(task_id="a")),), idempotency_key="pause-a"),
    Command("bob", (("task-a", TaskResumed(task_id="a", next_run_at=AT + timedelta(days=2))),)),
    Command("scheduler", (("task-a", TaskSnoozed(task_id="a", until=AT + timedelta(days=3))),)),
    Command(
        "alice",
        (
            (
                "task-b",
                TaskUpdated(
                    task_id="b",
                    definition=definition("B2", priority=9),
                    changed=("title", "priority"),
                    next_run_at=AT,
                ),
            ),
            ("task-b", TaskCanceled(task_id="b")),
        ),
    ),
    Command("alice", (("task-c", TaskCreated(task_id="c", definition=definition("C"))),)),
    Command("scheduler", (("task-c", TaskCompleted(task_id="c")),)),
    Command("alice", (("task-c", TaskDeleted(task_id="c")),)),
    Command("api", (("inbox", EventReceived(event_id="e-1", topic="x", payload={"n": 1})),)),
]


async def test_rebuild_of_a_fixed_history(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await append_all(conn, FIXED_HISTORY)
        tables = await assert_rebuild_reproduces(conn, batch=2)
    rows = {t["id"]: t for t in tables["task"]}
    assert (rows["a"]["status"], rows["a"]["next_run_at"]) == ("active", AT + timedelta(days=3))
    assert msgspec.json.decode(rows["a"]["definition"])["key"] == "a"
    assert (rows["b"]["status"], rows["b"]["title"], rows["b"]["priority"]) == ("canceled", "B2", 9)
    assert (rows["c"]["status"], rows["c"]["deleted"]) == ("completed", True)
    assert [(w["run_id"], w["task_id"]) for w in tables["due_work"]] == [("run-1", "a")]
    assert {c["position"] for c in tables["projection_checkpoints"]} == {13}


async def test_a_sub_minute_utc_offset_survives_a_rebuild(pool: asyncpg.Pool) -> None:
    # Before 1972 Monrovia was 44:30 behind UTC; the stored event says -00:44.
    at = datetime(1950, 6, 1, 12, tzinfo=ZoneInfo("Africa/Monrovia"))
    created = TaskCreated(task_id="m", definition=definition("M"), next_run_at=at)
    async with pool.acquire() as conn:
        await append_all(conn, [Command("alice", (("task-m", created),))])
        await assert_rebuild_reproduces(conn, batch=1)
