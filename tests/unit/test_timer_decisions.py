"""The timer's decisions with a fake clock: fire, misfire policies, completion, jitter."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from domain.events import Event, ScheduleMissed, TaskCompleted, TaskDefinition, TaskDue
from domain.schedules import compile_schedule
from domain.timer import MAX_RUN_ALL, DueTask, decide_due, jitter

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def definition(**changes: object) -> TaskDefinition:
    base = {"title": "t", "schedule_kind": "cron", "schedule_expr": "* * * * *"}
    return TaskDefinition(**{**base, **changes})  # type: ignore[arg-type]


def decide(defn: TaskDefinition, next_run_at: datetime, now: datetime) -> list[object]:
    schedule = compile_schedule(
        defn.schedule_kind, defn.schedule_expr, defn.timezone, dtstart=defn.dtstart, now=None
    )
    ids = (f"run-{n}" for n in itertools.count())
    return list(decide_due(DueTask("task-1", defn, next_run_at), schedule, now, lambda: next(ids)))


def test_an_on_time_occurrence_fires_once_and_schedules_the_next() -> None:
    events = decide(definition(priority=2, concurrency_key="k"), T0, T0 + timedelta(seconds=1))
    assert len(events) == 1
    due = events[0]
    assert isinstance(due, TaskDue)
    assert (due.scheduled_for, due.run_at, due.next_run_at) == (T0, T0, T0 + timedelta(minutes=1))
    assert (due.priority, due.concurrency_key, due.catch_up) == (2, "k", False)


def test_late_within_grace_is_still_on_time() -> None:
    events = decide(definition(), T0, T0 + timedelta(seconds=59))
    assert [type(e) for e in events] == [TaskDue]
    assert not events[0].catch_up  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("policy", "fired", "missed"),
    [("run_once", 1, 5), ("skip", 0, 6), ("run_all", 6, 0)],
)
def test_misfire_policies_after_six_missed_minutes(policy: str, fired: int, missed: int) -> None:
    now = T0 + timedelta(minutes=5, seconds=30)  # 08:00..08:05 all more than 10 s late
    events = decide(definition(misfire_policy=policy, misfire_grace_seconds=10), T0, now)
    dues = [e for e in events if isinstance(e, TaskDue)]
    misses = [e for e in events if isinstance(e, ScheduleMissed)]
    assert len(dues) == fired
    assert all(d.catch_up for d in dues)
    assert sum(len(m.occurrences) for m in misses) == missed
    next_run = T0 + timedelta(minutes=6)
    assert all(e.next_run_at == next_run for e in dues + misses)  # type: ignore[operator]
    if policy == "run_once":
        assert dues[0].scheduled_for == T0 + timedelta(minutes=5)  # the latest stands for all
        assert dues[0].run_at == now


def test_run_all_is_bounded_and_records_the_rest() -> None:
    now = T0 + timedelta(minutes=MAX_RUN_ALL + 10, seconds=30)  # 111 late occurrences
    events = decide(definition(misfire_policy="run_all", misfire_grace_seconds=0), T0, now)
    dues = [e for e in events if isinstance(e, TaskDue)]
    (missed,) = [e for e in events if isinstance(e, ScheduleMissed)]
    assert len(dues) == MAX_RUN_ALL
    assert len(missed.occurrences) == 11


def test_run_once_with_an_on_time_run_records_the_late_ones_only() -> None:
    now = T0 + timedelta(minutes=2, seconds=10)
    events = decide(definition(misfire_grace_seconds=30), T0, now)
    dues = [e for e in events if isinstance(e, TaskDue)]
    assert [d.scheduled_for for d in dues] == [T0 + timedelta(minutes=2)]
    assert not dues[0].catch_up


def test_a_once_schedule_completes_after_firing() -> None:
    defn = definition(schedule_kind="once", schedule_expr=T0.isoformat())
    events = decide(defn, T0, T0 + timedelta(seconds=1))
    assert [type(e) for e in events] == [TaskDue, TaskCompleted]
    assert events[0].next_run_at is None  # type: ignore[attr-defined]


def test_jitter_is_deterministic_per_occurrence_and_bounded() -> None:
    delays = {jitter("task-1", T0 + timedelta(minutes=n), 30) for n in range(200)}
    assert all(timedelta(0) <= d <= timedelta(seconds=30) for d in delays)
    assert len(delays) > 10
    assert jitter("task-1", T0, 30) == jitter("task-1", T0, 30)
    assert jitter("task-1", T0, 0) == timedelta(0)
    events = decide(definition(jitter_seconds=30), T0, T0)
    assert events[0].run_at == T0 + jitter("task-1", T0, 30)  # type: ignore[attr-defined]


def _decide_ahead(
    defn: TaskDefinition, next_run_at: datetime, now: datetime, lead: timedelta
) -> list[Event]:
    schedule = compile_schedule(
        defn.schedule_kind, defn.schedule_expr, defn.timezone, dtstart=defn.dtstart, now=None
    )
    ids = (f"run-{n}" for n in itertools.count())
    task = DueTask("task-1", defn, next_run_at)
    return decide_due(task, schedule, now, lambda: next(ids), lead)


def test_an_occurrence_within_the_lead_fires_now_with_its_run_due_at_its_own_instant() -> None:
    now = T0 - timedelta(milliseconds=200)
    events = _decide_ahead(definition(), T0, now, timedelta(milliseconds=250))
    assert len(events) == 1
    due = events[0]
    assert isinstance(due, TaskDue)
    assert (due.scheduled_for, due.run_at, due.fired_at) == (T0, T0, now)
    assert due.next_run_at == T0 + timedelta(minutes=1)
    assert not due.catch_up


def test_a_fire_ahead_of_a_once_task_completes_it_and_keeps_its_run_at_the_due_instant() -> None:
    defn = definition(schedule_kind="once", schedule_expr=T0.isoformat())
    events = _decide_ahead(defn, T0, T0 - timedelta(milliseconds=50), timedelta(seconds=1))
    assert [type(e) for e in events] == [TaskDue, TaskCompleted]
    due = events[0]
    assert isinstance(due, TaskDue)
    assert due.run_at == T0


def test_the_lead_never_fires_an_occurrence_beyond_it() -> None:
    events = _decide_ahead(definition(), T0, T0 - timedelta(seconds=1), timedelta(seconds=2))
    fired = [e.scheduled_for for e in events if isinstance(e, TaskDue)]
    assert fired == [T0]  # the next occurrence (a minute on) waits for its own turn
