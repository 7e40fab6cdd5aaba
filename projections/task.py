"""The `task` read model: each task's current definition, status and next run."""

from __future__ import annotations

from datetime import datetime

import msgspec

from domain.envelope import Envelope
from domain.events import (
    ScheduleMissed,
    TaskCanceled,
    TaskCompleted,
    TaskCreated,
    TaskDeleted,
    TaskDue,
    TaskPaused,
    TaskResumed,
    TaskRunRequested,
    TaskSnoozed,
    TaskUpdated,
)
from projections.base import Connection, Statement, run_plan

# The timer's wake-up (see plan) rides on the insert itself: one round trip per created task
# instead of two (the channel is TIMER_CHANNEL). A task created without a next run notifies
# "Infinity", which wakes no timer.
_INSERT = """
INSERT INTO task (id, key, title, schedule_kind, schedule_expr, timezone, priority, definition,
                  status, next_run_at, created_by, created_at, updated_at, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, 'active', $9, $10, $11, $11, $12)
RETURNING pg_notify('ordinaut_timer',
                    coalesce(extract(epoch FROM next_run_at)::text, 'Infinity'))
"""

_UPDATE_DEFINITION = """
UPDATE task SET key = $2, title = $3, schedule_kind = $4, schedule_expr = $5, timezone = $6,
                priority = $7, definition = $8::jsonb, next_run_at = $9, updated_at = $10,
                version = $11
WHERE id = $1
"""

# Each state change sets status and/or next_run_at, and always the version and updated_at.
_SET_STATE = """
UPDATE task SET status = coalesce($2, status), next_run_at = $3, deleted = deleted OR $4,
                updated_at = $5, version = $6
WHERE id = $1
"""

# Pausing keeps next_run_at: a resume with catch_up starts from the run that was due.
_PAUSE = "UPDATE task SET status = 'paused', updated_at = $2, version = $3 WHERE id = $1"
_TOUCH = "UPDATE task SET updated_at = $2, version = $3 WHERE id = $1"


TIMER_CHANNEL = "ordinaut_timer"
_NOTIFY = "SELECT pg_notify($1, $2)"


def _new_next_run(envelope: Envelope) -> datetime | None:
    """The next run a command just gave its task, if it gave one."""
    match envelope.event:
        case (
            TaskCreated(next_run_at=at) | TaskUpdated(next_run_at=at) | TaskResumed(next_run_at=at)
        ):
            return at
        case TaskSnoozed(until=until):
            return until
        case _:
            return None


class TaskProjection:
    """Maintains the `task` table."""

    # Every statement touches only the row keyed by its first parameter (projections.base).
    keyed: bool = True
    name: str = "task"
    tables: tuple[str, ...] = ("task",)
    handles: frozenset[str] = frozenset(
        {
            "task.created",
            "task.updated",
            "task.paused",
            "task.resumed",
            "task.snoozed",
            "task.canceled",
            "task.completed",
            "task.deleted",
            "task.due",
            "task.run_requested",
            "schedule.missed",
        }
    )

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Change the task row for one event."""
        await run_plan(conn, self.plan(envelope))

    def plan(self, envelope: Envelope) -> list[Statement]:
        """The statements for one event (batched with others' by the projection set)."""
        statements = self._plan(envelope)
        wake_at = _new_next_run(envelope)
        if wake_at is not None and not isinstance(envelope.event, TaskCreated):
            # Wakes a sleeping timer at commit if this run is earlier than the one it waits
            # for; only these events can move the earliest run earlier.
            statements.append((_NOTIFY, (TIMER_CHANNEL, str(wake_at.timestamp()))))
        return statements

    def _plan(self, envelope: Envelope) -> list[Statement]:
        event = envelope.event
        at, version = envelope.recorded_at, envelope.version
        match event:
            case TaskCreated(task_id=task_id, definition=d, next_run_at=next_run_at):
                return [
                    (
                        _INSERT,
                        (
                            task_id,
                            d.key,
                            d.title,
                            d.schedule_kind,
                            d.schedule_expr,
                            d.timezone,
                            d.priority,
                            msgspec.json.encode(d).decode(),
                            next_run_at,
                            envelope.meta.actor,
                            at,
                            version,
                        ),
                    )
                ]
            case TaskUpdated(task_id=task_id, definition=d, next_run_at=next_run_at):
                return [
                    (
                        _UPDATE_DEFINITION,
                        (
                            task_id,
                            d.key,
                            d.title,
                            d.schedule_kind,
                            d.schedule_expr,
                            d.timezone,
                            d.priority,
                            msgspec.json.encode(d).decode(),
                            next_run_at,
                            at,
                            version,
                        ),
                    )
                ]
            case TaskDue(task_id=task_id, next_run_at=next_run_at):
                return [_set(task_id, None, next_run_at, envelope)]
            case ScheduleMissed(task_id=task_id, next_run_at=next_run_at):
                return [_set(task_id, None, next_run_at, envelope)]
            case TaskSnoozed(task_id=task_id, until=until):
                return [_set(task_id, None, until, envelope)]
            case TaskResumed(task_id=task_id, next_run_at=next_run_at):
                return [_set(task_id, "active", next_run_at, envelope)]
            case TaskPaused(task_id=task_id):
                return [(_PAUSE, (task_id, at, version))]
            case TaskRunRequested(task_id=task_id):
                return [(_TOUCH, (task_id, at, version))]
            case TaskCanceled(task_id=task_id):
                return [_set(task_id, "canceled", None, envelope)]
            case TaskCompleted(task_id=task_id):
                return [_set(task_id, "completed", None, envelope)]
            case TaskDeleted(task_id=task_id):
                return [_set(task_id, None, None, envelope, deleted=True)]
        return []


def _set(
    task_id: str,
    status: str | None,
    next_run_at: object,
    envelope: Envelope,
    *,
    deleted: bool = False,
) -> Statement:
    args = (task_id, status, next_run_at, deleted, envelope.recorded_at, envelope.version)
    return (_SET_STATE, args)
