"""What each event does to its task's row (the `task` table)."""

from __future__ import annotations

from datetime import datetime

from domain.envelope import Envelope
from domain.events import (
    ScheduleMissed,
    TaskCreated,
    TaskDue,
    TaskResumed,
    TaskSnoozed,
    TaskUpdated,
    task_stream,
)
from domain.timer import needs_wake
from projections.rules.row import Model, Row, Rule, json_text, updated

TABLE = "task"
KEY = "id"
COLUMNS = (
    "id",
    "key",
    "title",
    "schedule_kind",
    "schedule_expr",
    "timezone",
    "priority",
    "definition",
    "status",
    "deleted",
    "next_run_at",
    "created_by",
    "created_at",
    "updated_at",
    "version",
)
# Columns the rules hold as JSON values rather than text (none: `definition` is only replaced).
STRUCTURED: frozenset[str] = frozenset()


def key_of(envelope: Envelope) -> str:
    """The task an event changes."""
    return str(envelope.event.task_id)  # type: ignore[union-attr]


def _stamped(row: Row | None, envelope: Envelope, **columns: object) -> Row | None:
    """Every change sets updated_at and the version (the stream's)."""
    return updated(row, updated_at=envelope.recorded_at, version=envelope.version, **columns)


def _created(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, TaskCreated)
    event, at = envelope.event, envelope.recorded_at
    d = event.definition
    return {
        "id": event.task_id,
        "key": d.key,
        "title": d.title,
        "schedule_kind": d.schedule_kind,
        "schedule_expr": d.schedule_expr,
        "timezone": d.timezone,
        "priority": d.priority,
        "definition": json_text(d),
        "status": "active",
        "deleted": False,
        "next_run_at": event.next_run_at,
        "created_by": envelope.meta.actor,
        "created_at": at,
        "updated_at": at,
        "version": envelope.version,
    }


def _updated(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, TaskUpdated)
    event = envelope.event
    d = event.definition
    return _stamped(
        row,
        envelope,
        key=d.key,
        title=d.title,
        schedule_kind=d.schedule_kind,
        schedule_expr=d.schedule_expr,
        timezone=d.timezone,
        priority=d.priority,
        definition=json_text(d),
        next_run_at=event.next_run_at,
    )


def _next_run(row: Row | None, envelope: Envelope) -> Row | None:
    """Fired, missed, snoozed: the task's next run moves, its status stays."""
    return _stamped(row, envelope, next_run_at=new_next_run(envelope))


def _resumed(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, TaskResumed)
    return _stamped(row, envelope, status="active", next_run_at=envelope.event.next_run_at)


# Pausing keeps next_run_at: a resume with catch_up starts from the run that was due.
def _paused(row: Row | None, envelope: Envelope) -> Row | None:
    return _stamped(row, envelope, status="paused")


def _touched(row: Row | None, envelope: Envelope) -> Row | None:
    return _stamped(row, envelope)


def _ended(status: str) -> Rule:
    def rule(row: Row | None, envelope: Envelope) -> Row | None:
        return _stamped(row, envelope, status=status, next_run_at=None)

    return rule


def _deleted(row: Row | None, envelope: Envelope) -> Row | None:
    return _stamped(row, envelope, next_run_at=None, deleted=True)


RULES: dict[str, Rule] = {
    "task.created": _created,
    "task.updated": _updated,
    "task.paused": _paused,
    "task.resumed": _resumed,
    "task.snoozed": _next_run,
    "task.canceled": _ended("canceled"),
    "task.completed": _ended("completed"),
    "task.deleted": _deleted,
    "task.due": _next_run,
    "task.run_requested": _touched,
    "schedule.missed": _next_run,
}


def new_next_run(envelope: Envelope) -> datetime | None:
    """The next run an event gives its task (None: none, or the event gives none)."""
    match envelope.event:
        case (
            TaskCreated(next_run_at=at)
            | TaskUpdated(next_run_at=at)
            | TaskResumed(next_run_at=at)
            | TaskDue(next_run_at=at)
            | ScheduleMissed(next_run_at=at)
        ):
            return at
        case TaskSnoozed(until=until):
            return until
    return None


def wakes_timer(envelope: Envelope) -> datetime | None:
    """The run a command just gave its task, if it may be earlier than the one the timer
    sleeps for: only creating, updating, resuming and snoozing can move it earlier, and only
    a run due soon can be (domain/timer.py needs_wake). Most tasks' next run is hours away:
    their commands then skip the NOTIFY, which would also hold PostgreSQL's one notify-queue
    lock through their commit."""
    if not isinstance(envelope.event, TaskCreated | TaskUpdated | TaskResumed | TaskSnoozed):
        return None
    at = new_next_run(envelope)
    return at if at is not None and needs_wake(at, envelope.recorded_at) else None


MODEL = Model(
    TABLE,
    KEY,
    COLUMNS,
    STRUCTURED,
    RULES,
    key_of,
    task_stream,
    json_text_columns=frozenset({"definition"}),
)
