"""Applying a file of tasks, decided purely: what to create, update, leave alone or prune.

Each task in a file is named by its ``key``; the file's ``source`` is written into every
task's ``metadata.source`` so that a later apply with ``--prune`` can find the tasks this
file made and no longer lists. Decisions reuse the task commands of `domain.tasks`, so a
file is validated exactly like ``POST /tasks``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import msgspec

from domain.errors import RuleViolation
from domain.events import Event, TaskDefinition, TaskDeleted, TaskUpdated
from domain.tasks import (
    TaskState,
    decide_cancel,
    decide_create,
    decide_update,
    definition_changes,
)

SOURCE = "source"  # the metadata entry naming the file a task came from
Action = Literal["create", "update", "unchanged", "prune"]


@dataclass(frozen=True)
class StoredTask:
    """A live task the file may touch, with the version its next event must follow."""

    state: TaskState
    version: int


@dataclass(frozen=True)
class TaskAppend:
    """Events for one task's stream, valid only at ``expected_version``."""

    task_id: str
    expected_version: int
    events: tuple[Event, ...]


@dataclass(frozen=True)
class TaskChange:
    """What applying the file does to one task; ``changed`` maps field -> (before, after)."""

    key: str
    action: Action
    task_id: str
    appends: tuple[TaskAppend, ...] = ()
    changed: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    # a canceled or completed task that held the key: retired (deleted) for the new one
    replaced: str | None = None


@dataclass(frozen=True)
class Catalog:
    """What task validation needs to know about the deployment."""

    tools: frozenset[str] | None = None
    shell_allow: tuple[str, ...] | None = None


def with_source(definition: TaskDefinition, source: str, where: str) -> TaskDefinition:
    """The definition labelled with the file it came from (a different label is refused)."""
    own = definition.metadata.get(SOURCE)
    if own is not None and own != source:
        raise RuleViolation(f"{where}.metadata.{SOURCE}", f"is set by apply (to {source!r})")
    return msgspec.structs.replace(definition, metadata={**definition.metadata, SOURCE: source})


def plan_tasks(
    desired: Sequence[TaskDefinition],
    stored: Mapping[str, StoredTask],
    sourced: Sequence[StoredTask],
    *,
    prune: bool,
    now: datetime,
    catalog: Catalog,
    new_id: Callable[[], str],
) -> tuple[list[TaskChange], list[RuleViolation]]:
    """One change per task in the file (and per pruned task); every problem, with its task.

    ``stored`` are the live tasks holding the file's keys; ``sourced`` the open tasks
    labelled with the file's source (prune candidates). Nothing is valid unless all is.
    """
    changes: list[TaskChange] = []
    problems: list[RuleViolation] = []
    first_at: dict[str, int] = {}
    for index, definition in enumerate(desired):
        key = definition.key or ""
        if key in first_at:
            reason = f"duplicate key {key!r} (first at tasks[{first_at[key]}])"
            problems.append(RuleViolation(f"tasks[{index}].key", reason))
            continue
        first_at[key] = index
        try:
            changes.append(_plan_one(definition, stored.get(key), now, catalog, new_id))
        except RuleViolation as exc:
            problems.append(RuleViolation(f"tasks[{index}].{exc.field}", exc.reason))
    if prune:
        changes += [_prune(task) for task in sourced if task.state.definition.key not in first_at]
    return changes, problems


def _plan_one(
    definition: TaskDefinition,
    current: StoredTask | None,
    now: datetime,
    catalog: Catalog,
    new_id: Callable[[], str],
) -> TaskChange:
    key = definition.key or ""
    if current is None or current.state.status in ("canceled", "completed"):
        task_id = new_id()
        events = decide_create(task_id, definition, now, catalog.tools, catalog.shell_allow)
        appends = [TaskAppend(task_id, 0, tuple(events))]
        replaced = None
        if current is not None:  # the key is held by a finished task: retire it first
            old = current.state.task_id
            appends.insert(0, TaskAppend(old, current.version, (TaskDeleted(task_id=old),)))
            replaced = old
        return TaskChange(key, "create", task_id, tuple(appends), replaced=replaced)
    state = current.state
    owner, claimed = state.definition.metadata.get(SOURCE), definition.metadata.get(SOURCE)
    if owner is not None and owner != claimed:
        # two files naming one key would take the task from each other on every apply
        raise RuleViolation("key", f"task {key!r} comes from source {owner!r}, not {claimed!r}")
    changes = definition_changes(state.definition, definition)
    events = decide_update(state, changes, now, catalog.tools, catalog.shell_allow)
    if not events:
        return TaskChange(key, "unchanged", state.task_id)
    (updated,) = [e for e in events if isinstance(e, TaskUpdated)]
    before = msgspec.to_builtins(msgspec.structs.asdict(state.definition))
    after = msgspec.to_builtins(msgspec.structs.asdict(updated.definition))
    changed = {name: (before.get(name), after.get(name)) for name in updated.changed}
    append = TaskAppend(state.task_id, current.version, tuple(events))
    return TaskChange(key, "update", state.task_id, (append,), changed)


def _prune(task: StoredTask) -> TaskChange:
    state = task.state
    events = decide_cancel(state)
    append = TaskAppend(state.task_id, task.version, tuple(events))
    return TaskChange(state.definition.key or "", "prune", state.task_id, (append,))
