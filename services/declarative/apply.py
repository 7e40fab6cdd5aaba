"""Applying a loaded tasks file to the store: every change in one transaction, or none.

The decisions are the API's own: tools go through `registration_of` (as POST /tools) and
tasks through `domain.task_files`, which uses the task commands of POST /tasks. Everything
in the file is validated before anything is written; a dry run decides and writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from domain.envelope import EventMeta
from domain.errors import RuleViolation
from domain.events import TaskDefinition, ToolRegistered, task_stream, tool_stream
from domain.task_files import Catalog, StoredTask, TaskChange, plan_tasks, with_source
from domain.tasks import TaskState
from domain.tools import same_registration
from projections.base import Connection, ProjectionSet
from services.application.task_store import claim_task_keys, runs_ending_with_tasks
from services.application.tool_bodies import registration_of
from services.application.tool_store import known_tool_addresses, load_tool, stream_version
from services.declarative.loader import FileInvalid, LoadedFile, Problem
from services.store.events import StreamAppend, append_in_transaction

ACTOR = "admin"  # tasks applied from files belong to the admin, as if it POSTed them
_definition = msgspec.json.Decoder(TaskDefinition)
_COLUMNS = "id, definition::text AS definition, status, next_run_at, version"


@dataclass(frozen=True)
class ApplyOptions:
    """How to apply: prune tasks gone from the file, or only say what would happen."""

    prune: bool = False
    dry_run: bool = False
    shell_allow: tuple[str, ...] = ()
    python_allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolChange:
    """What applying the file does to one tool: register, replace, or nothing."""

    address: str
    action: str
    registration: ToolRegistered
    expected_version: int = 0


@dataclass(frozen=True)
class ApplyReport:
    """Every change applying the file made (or, in a dry run, would make)."""

    name: str
    source: str
    dry_run: bool
    tasks: list[TaskChange] = field(default_factory=list)
    tools: list[ToolChange] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for change in self.tasks if change.action == action)


async def apply_file(
    conn: Connection, loaded: LoadedFile, options: ApplyOptions, projections: ProjectionSet
) -> ApplyReport:
    """Apply ``loaded`` in one transaction; FileInvalid (nothing written) if any part breaks a
    rule."""
    now = datetime.now(UTC)
    async with conn.transaction():
        tools, problems = await _plan_tools(conn, loaded, options.python_allow)
        known = await known_tool_addresses(conn) | {change.address for change in tools}
        desired, bad = _definitions(loaded)
        problems += bad
        keys = [d.key or "" for d in desired]
        # As POST /tasks does: a create by one of these keys meanwhile would be refused by the
        # unique index, where it should find and update the task this file makes.
        await claim_task_keys(conn, ACTOR, [key for key in keys if key])
        stored, sourced = await _stored(conn, keys, loaded.source)
        catalog = Catalog(frozenset(known), options.shell_allow)
        changes, rule_problems = plan_tasks(
            desired,
            stored,
            sourced,
            prune=options.prune,
            now=now,
            catalog=catalog,
            new_id=lambda: str(uuid.uuid4()),
        )
        problems += [_problem(loaded, exc) for exc in rule_problems]
        if problems:
            raise FileInvalid(loaded.name, problems)
        report = ApplyReport(loaded.name, loaded.source, options.dry_run, changes, tools)
        appends = _appends(report)
        if appends and not options.dry_run:
            appends += await runs_ending_with_tasks(conn, appends)  # a prune ends parked runs
            meta = EventMeta(actor=ACTOR, correlation_id=f"apply-{uuid.uuid4()}")
            await append_in_transaction(conn, appends, meta, projections)
    return report


def _definitions(loaded: LoadedFile) -> tuple[list[TaskDefinition], list[Problem]]:
    """The file's tasks as POST /tasks would read them, labelled with the file's source."""
    definitions, problems = [], []
    for index, task in enumerate(loaded.content.tasks):
        definition = msgspec.convert(msgspec.to_builtins(task), TaskDefinition)
        try:
            definitions.append(with_source(definition, loaded.source, f"tasks[{index}]"))
        except RuleViolation as exc:
            problems.append(_problem(loaded, exc))
            definitions.append(definition)
    return definitions, problems


async def _plan_tools(
    conn: Connection, loaded: LoadedFile, python_allow: tuple[str, ...]
) -> tuple[list[ToolChange], list[Problem]]:
    changes, problems = [], []
    for index, body in enumerate(loaded.content.tools):
        try:
            tool = registration_of(body, python_allow)
        except RuleViolation as exc:
            problems.append(
                _problem(loaded, RuleViolation(f"tools[{index}].{exc.field}", exc.reason))
            )
            continue
        current = await load_tool(conn, tool.address, lock=True)
        if current is not None and same_registration(current.registration, tool):
            changes.append(ToolChange(tool.address, "unchanged", tool))
            continue
        at = current.version if current else await stream_version(conn, tool_stream(tool.address))
        changes.append(ToolChange(tool.address, "replace" if current else "register", tool, at))
    return changes, problems


async def _stored(
    conn: Connection, keys: Sequence[str], source: str
) -> tuple[dict[str, StoredTask], list[StoredTask]]:
    """The admin's live tasks holding the file's keys, and its open tasks from this source."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM task WHERE created_by = $1 AND key = ANY($2::text[])"  # noqa: S608 - fixed columns
        " AND NOT deleted FOR UPDATE",
        ACTOR,
        list(keys),
    )
    sourced = await conn.fetch(
        f"SELECT {_COLUMNS} FROM task WHERE created_by = $1 AND NOT deleted"  # noqa: S608 - fixed columns
        # the expression of the task_source index (migration 0015), spelled the same
        " AND status IN ('active', 'paused') AND definition -> 'metadata' ->> 'source' = $2"
        " ORDER BY created_at, id FOR UPDATE",
        ACTOR,
        source,
    )
    by_key = {task.state.definition.key or "": task for task in map(_stored_task, rows)}
    return by_key, [_stored_task(row) for row in sourced]


def _stored_task(row: Any) -> StoredTask:
    definition = _definition.decode(row["definition"])
    state = TaskState(row["id"], definition, row["status"], row["next_run_at"])
    return StoredTask(state, row["version"])


def _appends(report: ApplyReport) -> list[StreamAppend]:
    appends = [
        StreamAppend(tool_stream(tool.address), [tool.registration], tool.expected_version)
        for tool in report.tools
        if tool.action != "unchanged"
    ]
    for change in report.tasks:
        appends += [
            StreamAppend(task_stream(a.task_id), list(a.events), a.expected_version)
            for a in change.appends
        ]
    return appends


def _problem(loaded: LoadedFile, exc: RuleViolation) -> Problem:
    return Problem(loaded.lines.of(exc.field), exc.field, exc.reason)
