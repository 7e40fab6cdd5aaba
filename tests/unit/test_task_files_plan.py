"""Planning an apply, purely: create, update only real changes, unchanged, prune, revive."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from domain.errors import RuleViolation
from domain.events import TaskCanceled, TaskCreated, TaskDefinition, TaskDeleted, TaskUpdated
from domain.task_files import Catalog, StoredTask, TaskChange, plan_tasks, with_source
from domain.tasks import TaskState

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def task(key: str, **fields: object) -> TaskDefinition:
    base: dict[str, object] = {
        "title": key,
        "schedule_kind": "cron",
        "schedule_expr": "0 8 * * *",
        "key": key,
        "metadata": {"source": "f"},
    }
    return msgspec.convert({**base, **fields}, TaskDefinition)


def stored(definition: TaskDefinition, status: str = "active", version: int = 1) -> StoredTask:
    return StoredTask(TaskState(f"id-{definition.key}", definition, status, NOW), version)


def plan(
    desired: list[TaskDefinition], current: list[StoredTask], prune: bool = False
) -> list[TaskChange]:
    ids = iter(f"new-{n}" for n in range(100))
    changes, problems = plan_tasks(
        desired,
        {c.state.definition.key or "": c for c in current},
        [c for c in current if c.state.status in ("active", "paused")],
        prune=prune,
        now=NOW,
        catalog=Catalog(),
        new_id=lambda: next(ids),
    )
    assert problems == []
    return changes


def test_unchanged_tasks_make_no_events_and_a_change_makes_one_update() -> None:
    a, b = task("a"), task("b", priority=3)
    changes = plan([a, task("b", priority=2)], [stored(a), stored(b, version=4)])
    assert [(c.key, c.action) for c in changes] == [("a", "unchanged"), ("b", "update")]
    ((append,),) = [c.appends for c in changes if c.action == "update"]
    assert append.expected_version == 4
    (event,) = append.events
    assert isinstance(event, TaskUpdated)
    assert event.changed == ("priority",)
    assert changes[1].changed == {"priority": (3, 2)}


def test_values_are_compared_as_json_as_the_store_gives_them_back() -> None:
    # PostgreSQL returns the float 1e23 as the integer 100000000000000000000000 and -0.0 as 0.0
    as_stored = {"params": {"big": 10**23, "zero": 0.0, "two": 2, "flag": True}}
    as_written = {"params": {"big": 1e23, "zero": -0.0, "two": 2.0, "flag": True}}
    current = stored(task("a", payload=as_stored))
    assert [c.action for c in plan([task("a", payload=as_written)], [current])] == ["unchanged"]
    # in Python True == 1, but a boolean that became a number is a change
    as_number = {"params": {**as_written["params"], "flag": 1}}
    (change,) = plan([task("a", payload=as_number)], [current])
    assert change.action == "update"
    assert change.changed["payload"][1] == as_number


def test_new_keys_are_created_and_dropped_ones_pruned_only_when_asked() -> None:
    old = task("old")
    assert [c.action for c in plan([task("new")], [stored(old)])] == ["create"]
    changes = plan([task("new")], [stored(old)], prune=True)
    assert [(c.key, c.action) for c in changes] == [("new", "create"), ("old", "prune")]
    assert isinstance(changes[1].appends[0].events[0], TaskCanceled)
    assert isinstance(changes[0].appends[0].events[0], TaskCreated)


def test_a_key_held_by_a_canceled_task_retires_it_for_a_new_one() -> None:
    (change,) = plan([task("a")], [stored(task("a"), status="canceled", version=7)])
    assert (change.action, change.replaced, change.task_id) == ("create", "id-a", "new-0")
    retire, create = change.appends
    assert (retire.task_id, retire.expected_version) == ("id-a", 7)
    assert isinstance(retire.events[0], TaskDeleted)
    assert create.expected_version == 0


def test_every_problem_is_reported_with_its_task() -> None:
    _, problems = plan_tasks(
        [task("a", schedule_expr="61 * * * *"), task("b"), task("b")],
        {},
        [],
        prune=False,
        now=NOW,
        catalog=Catalog(),
        new_id=lambda: "x",
    )
    assert [p.field.split(".")[0] for p in problems] == ["tasks[0]", "tasks[2]"]
    assert "duplicate key 'b'" in problems[1].reason


def test_the_source_label_is_set_by_apply() -> None:
    labelled = with_source(task("a", metadata={"team": "ops"}), "jobs.yaml", "tasks[0]")
    assert labelled.metadata == {"team": "ops", "source": "jobs.yaml"}
    with pytest.raises(RuleViolation, match="set by apply"):
        with_source(task("a", metadata={"source": "other"}), "jobs.yaml", "tasks[0]")


def test_a_task_from_another_source_is_not_taken_over() -> None:
    theirs = stored(task("a", metadata={"source": "theirs.yaml"}))
    _, problems = plan_tasks(
        [task("a")],
        {"a": theirs},
        [],
        prune=False,
        now=NOW,
        catalog=Catalog(),
        new_id=lambda: "x",
    )
    assert [(p.field, p.reason) for p in problems] == [
        ("tasks[0].key", "task 'a' comes from source 'theirs.yaml', not 'f'")
    ]
    unlabelled = stored(task("a", metadata={}))  # made through the API: the file adopts it
    (change,) = plan([task("a")], [unlabelled])
    assert change.changed == {"metadata": ({}, {"source": "f"})}
