"""What each event does to its task's row (projections/rules/task.py), without a database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
import pytest

from domain.events import (
    Event,
    ScheduleMissed,
    TaskCanceled,
    TaskCompleted,
    TaskCreated,
    TaskDefinition,
    TaskDeleted,
    TaskDue,
    TaskPaused,
    TaskResumed,
    TaskRunRequested,
    TaskSnoozed,
    TaskUpdated,
)
from domain.timer import WAKE_HORIZON
from projections.rules import task as rules
from projections.rules.row import Row
from tests.unit.projections.support import AT, LATER, envelope

DEFINITION = TaskDefinition(
    title="Report", schedule_kind="cron", schedule_expr="0 9 * * *", key="report", priority=3
)
NEXT = AT + timedelta(days=1)
ROW: Row = {
    "id": "t-1",
    "key": "report",
    "title": "Report",
    "schedule_kind": "cron",
    "schedule_expr": "0 9 * * *",
    "timezone": "UTC",
    "priority": 3,
    "definition": msgspec.json.encode(DEFINITION).decode(),
    "status": "active",
    "deleted": False,
    "next_run_at": AT,
    "created_by": "alice",
    "created_at": AT,
    "updated_at": AT,
    "version": 1,
}


def apply(event: Event, row: Row | None = ROW) -> Row | None:
    envelope_ = envelope("task-t-1", event, at=LATER, actor="bob")
    return rules.RULES[envelope_.type](row, envelope_)


def stamped(**columns: Any) -> Row:
    """ROW as a later event (version 2, at LATER) leaves it, with ``columns`` changed."""
    return {**ROW, "updated_at": LATER, "version": 2, **columns}


def test_created_makes_an_active_row_owned_by_its_creator() -> None:
    created = TaskCreated(task_id="t-1", definition=DEFINITION, next_run_at=AT)
    row = rules.RULES["task.created"](None, envelope("task-t-1", created, version=1))
    assert row == ROW


def test_updated_replaces_the_definition_and_the_next_run() -> None:
    changed = msgspec.structs.replace(DEFINITION, title="Weekly", priority=7, key=None)
    event = TaskUpdated(task_id="t-1", definition=changed, changed=("title",), next_run_at=NEXT)
    assert apply(event) == stamped(
        key=None,
        title="Weekly",
        priority=7,
        definition=msgspec.json.encode(changed).decode(),
        next_run_at=NEXT,
    )


def test_paused_keeps_the_next_run_a_catch_up_resume_starts_from() -> None:
    assert apply(TaskPaused(task_id="t-1")) == stamped(status="paused")


def test_resumed_is_active_again_from_its_new_next_run() -> None:
    paused = {**ROW, "status": "paused"}
    assert apply(TaskResumed(task_id="t-1", next_run_at=NEXT), paused) == stamped(
        status="active", next_run_at=NEXT
    )


def test_snoozed_moves_the_next_run_to_its_end() -> None:
    assert apply(TaskSnoozed(task_id="t-1", until=NEXT)) == stamped(next_run_at=NEXT)


@pytest.mark.parametrize("status", ["canceled", "completed"])
def test_canceled_and_completed_end_it_with_no_next_run(status: str) -> None:
    event = TaskCanceled(task_id="t-1") if status == "canceled" else TaskCompleted(task_id="t-1")
    assert apply(event) == stamped(status=status, next_run_at=None)


def test_deleted_keeps_the_status_and_marks_it_deleted() -> None:
    paused = {**ROW, "status": "paused"}
    assert apply(TaskDeleted(task_id="t-1"), paused) == stamped(
        status="paused", next_run_at=None, deleted=True
    )


@pytest.mark.parametrize("next_run_at", [NEXT, None])
def test_due_moves_the_next_run_and_keeps_the_status(next_run_at: Any) -> None:
    due = TaskDue(
        task_id="t-1",
        run_id="r-1",
        scheduled_for=AT,
        fired_at=AT,
        run_at=AT,
        next_run_at=next_run_at,
    )
    assert apply(due) == stamped(next_run_at=next_run_at)


def test_a_missed_schedule_moves_the_next_run() -> None:
    missed = ScheduleMissed(task_id="t-1", occurrences=(AT,), policy="skip", next_run_at=NEXT)
    assert apply(missed) == stamped(next_run_at=NEXT)


def test_run_requested_only_touches_the_row() -> None:
    requested = TaskRunRequested(task_id="t-1", run_id="r-1", run_at=LATER)
    assert apply(requested) == stamped()


@pytest.mark.parametrize("event_type", sorted(rules.RULES.keys() - {"task.created"}))
def test_an_event_for_a_task_with_no_row_makes_none(event_type: str) -> None:
    examples: dict[str, Event] = {
        "task.updated": TaskUpdated(task_id="t-1", definition=DEFINITION, changed=()),
        "task.paused": TaskPaused(task_id="t-1"),
        "task.resumed": TaskResumed(task_id="t-1"),
        "task.snoozed": TaskSnoozed(task_id="t-1", until=NEXT),
        "task.canceled": TaskCanceled(task_id="t-1"),
        "task.completed": TaskCompleted(task_id="t-1"),
        "task.deleted": TaskDeleted(task_id="t-1"),
        "task.due": TaskDue(
            task_id="t-1", run_id="r", scheduled_for=AT, fired_at=AT, run_at=AT, next_run_at=None
        ),
        "task.run_requested": TaskRunRequested(task_id="t-1", run_id="r", run_at=AT),
        "schedule.missed": ScheduleMissed(task_id="t-1", occurrences=(), policy="skip"),
    }
    assert apply(examples[event_type], None) is None


def test_only_commands_that_can_move_the_next_run_earlier_wake_the_timer() -> None:
    soon = AT + timedelta(seconds=10)
    created = TaskCreated(task_id="t-1", definition=DEFINITION, next_run_at=soon)
    due = TaskDue(
        task_id="t-1", run_id="r", scheduled_for=AT, fired_at=AT, run_at=AT, next_run_at=soon
    )
    assert rules.wakes_timer(envelope("task-t-1", created)) == soon
    assert rules.wakes_timer(envelope("task-t-1", TaskSnoozed(task_id="t-1", until=AT))) == AT
    assert rules.wakes_timer(envelope("task-t-1", due)) is None
    assert rules.wakes_timer(envelope("task-t-1", TaskPaused(task_id="t-1"))) is None


def test_a_run_due_after_the_timers_longest_sleep_wakes_no_timer() -> None:
    """The timer looks again within MAX_SLEEP anyway: a run due later needs no NOTIFY."""
    later = TaskCreated(task_id="t-1", definition=DEFINITION, next_run_at=NEXT)
    assert rules.wakes_timer(envelope("task-t-1", later)) is None
    edge = AT + WAKE_HORIZON - timedelta(microseconds=1)
    near = TaskCreated(task_id="t-1", definition=DEFINITION, next_run_at=edge)
    assert rules.wakes_timer(envelope("task-t-1", near)) == edge


def test_the_projection_handles_exactly_the_rules_table() -> None:
    from projections.task import TaskProjection

    assert TaskProjection.handles == frozenset(rules.RULES)
