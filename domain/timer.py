"""What the timer decides when a task's next run is due: fire, catch up, skip, or complete."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.events import Event, ScheduleMissed, TaskCompleted, TaskDefinition, TaskDue
from domain.schedules import Schedule

DEFAULT_MISFIRE_GRACE = timedelta(seconds=60)
MAX_RUN_ALL = 100  # catch-up runs per misfire under run_all; the rest are recorded as missed
MAX_ENUMERATED = 1000  # occurrences listed per decision; a longer outage is marked `more`
# The timer looks again at least this often (a safety net: a lost wake-up delays at most
# this long), so a run due later than WAKE_HORIZON after a command needs no wake-up.
MAX_SLEEP = timedelta(seconds=30)
# MAX_SLEEP, plus room for the command's transaction to commit after it started.
WAKE_HORIZON = MAX_SLEEP + timedelta(seconds=30)


def needs_wake(next_run_at: datetime, command_at: datetime) -> bool:
    """Whether a command that gave a task ``next_run_at`` at ``command_at`` must wake a
    sleeping timer: only if the timer could sleep past that run, i.e. it is due soon."""
    return next_run_at < command_at + WAKE_HORIZON


@dataclass(frozen=True)
class DueTask:
    """The part of a claimed task row the timer decides on."""

    task_id: str
    definition: TaskDefinition
    next_run_at: datetime


def jitter(task_id: str, scheduled_for: datetime, jitter_seconds: int) -> timedelta:
    """A delay in [0, jitter_seconds] fixed by the occurrence, so a restart never re-rolls it."""
    if jitter_seconds <= 0:
        return timedelta(0)
    digest = hashlib.sha256(f"{task_id}|{scheduled_for.isoformat()}".encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % (jitter_seconds + 1))


def _due_occurrences(
    schedule: Schedule, first: datetime, now: datetime
) -> tuple[list[datetime], bool]:
    """Occurrences from ``first`` up to ``now``; True if there were more than we list."""
    due = [first]
    while len(due) < MAX_ENUMERATED:
        following = schedule.next_after(due[-1])
        if following is None or following > now:
            return due, False
        due.append(following)
    return due, True


def _split_by_policy(
    task: DueTask, late: list[datetime], on_time: list[datetime]
) -> tuple[list[datetime], list[datetime]]:
    """(late occurrences to run as catch-up, late occurrences recorded as missed)."""
    policy = task.definition.misfire_policy
    if not late or policy == "skip":
        return [], late
    if policy == "run_all":
        return late[:MAX_RUN_ALL], late[MAX_RUN_ALL:]
    # run_once: one catch-up run stands for them all, unless an on-time run already does.
    return ([], late) if on_time else ([late[-1]], late[:-1])


def _grace(definition: TaskDefinition) -> timedelta:
    seconds = definition.misfire_grace_seconds
    return DEFAULT_MISFIRE_GRACE if seconds is None else timedelta(seconds=seconds)


def decide_due(
    task: DueTask,
    schedule: Schedule,
    now: datetime,
    new_run_id: Callable[[], str],
    lead: timedelta = timedelta(0),
) -> list[Event]:
    """Events for a task whose ``next_run_at`` is at or before ``now + lead``.

    Occurrences up to ``lead`` ahead fire now, each run still due at its own instant
    (``run_at``): queuing a run ahead takes the firing off the path from due to start, so a
    worker waiting for that instant starts it then. Lateness is measured at ``now``.
    """
    horizon = now + lead
    due, more = _due_occurrences(schedule, task.next_run_at, horizon)
    late = [o for o in due if now - o > _grace(task.definition)]
    on_time = [o for o in due if now - o <= _grace(task.definition)]
    catch_up, missed = _split_by_policy(task, late, on_time)
    next_run_at = schedule.next_after(max(horizon, due[-1]))
    events: list[Event] = []
    if missed or more:
        events.append(
            ScheduleMissed(
                task_id=task.task_id,
                occurrences=tuple(missed),
                policy=task.definition.misfire_policy,
                more=more,
                next_run_at=next_run_at,
            )
        )
    for occurrence in [*catch_up, *on_time]:
        events.append(
            _fire(task, occurrence, now, next_run_at, new_run_id(), occurrence in catch_up)
        )
    if next_run_at is None:
        events.append(TaskCompleted(task_id=task.task_id))
    return events


def _fire(
    task: DueTask,
    occurrence: datetime,
    now: datetime,
    next_run_at: datetime | None,
    run_id: str,
    catch_up: bool,
) -> TaskDue:
    delay = jitter(task.task_id, occurrence, task.definition.jitter_seconds)
    return TaskDue(
        task_id=task.task_id,
        run_id=run_id,
        scheduled_for=occurrence,
        fired_at=now,
        run_at=max(occurrence + delay, now) if catch_up else occurrence + delay,
        next_run_at=next_run_at,
        priority=task.definition.priority,
        concurrency_key=task.definition.concurrency_key,
        catch_up=catch_up,
    )
