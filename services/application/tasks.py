"""Task commands (each appends events) and reads (each from the task read model)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from domain.events import (
    Event,
    TaskCreated,
    TaskDefinition,
    TaskRunRequested,
    TaskUpdated,
    run_stream,
    task_stream,
)
from domain.ownership import check_shared_keys
from domain.pipeline import check_tool_scopes
from domain.runs import queue_runs
from domain.schedules import load_schedule, next_occurrences
from domain.tasks import (
    TaskState,
    decide_cancel,
    decide_create,
    decide_delete,
    decide_pause,
    decide_resume,
    decide_run_now,
    decide_snooze,
    decide_update,
    definition_changes,
)
from projections.base import Connection
from services.application.context import Answer, Backend, Caller, OperationResult
from services.application.task_bodies import RunStarted, TaskBody, TaskPage, TaskView
from services.application.task_store import (
    claim_task_keys,
    decode_cursor,
    encode_cursor,
    list_tasks,
    load_task,
    lock_task,
    remember,
    replay,
    runs_ending_with_tasks,
    task_id_by_key,
)
from services.application.tool_store import builtin_tool_scopes, tool_scopes, uses_tools
from services.store.events import (
    StoredEvent,
    StreamAppend,
    append_in_transaction,
    read_stream_stored,
)

Decide = Callable[[TaskState, datetime], list[Event]]
Respond = Callable[[TaskView | None, list[Event]], object]


class TaskCommand:
    """One idempotent command on one task, in one transaction."""

    def __init__(self, caller: Caller, backend: Backend) -> None:
        self.caller, self.backend = caller, backend
        self.principal = caller.principal
        self.key = caller.idempotency_key

    async def replayed(self, conn: Connection) -> OperationResult | None:
        """The stored answer to an earlier call with this idempotency key, if any."""
        if self.key is None:
            return None
        prior = await replay(conn, self.principal.actor, self.key, self.caller.fingerprint)
        return None if prior is None else OperationResult(prior[0], prior[1])

    async def append(
        self,
        conn: Connection,
        task_id: str,
        events: list[Event],
        expected: int,
        definition: TaskDefinition,
        owner: str,
    ) -> bool:
        """Append; False if a concurrent repeat of this idempotent command got there first."""
        appends = [StreamAppend(task_stream(task_id), events, expected)]
        appends += [
            StreamAppend(run_stream(run.run_id), [run], expected_version=0)
            for run in queue_runs(events, definition, owner)
        ]
        appends += await runs_ending_with_tasks(conn, appends)
        result = await append_in_transaction(
            conn,
            appends,
            self.caller.meta(),
            self.backend.projections,
            fingerprint=self.caller.fingerprint,
        )
        return not result.replayed

    async def answer(self, conn: Connection, answer: Answer, body: object) -> OperationResult:
        """The answer, remembered for repeats of an idempotent call."""
        if self.key is not None:
            await remember(conn, self.principal.actor, self.key, answer, body)
        return OperationResult(answer, body)

    async def on_task(
        self, task_id: str, decide: Decide, respond: Respond, answer: Answer = Answer.DONE
    ) -> OperationResult:
        """Decide on the task's current state, append, and answer with ``respond``."""
        async with self.backend.pool.acquire() as conn, conn.transaction():
            if (prior := await self.replayed(conn)) is not None:
                return prior
            # The task's row, locked before deciding: a timer claiming it (FOR UPDATE SKIP
            # LOCKED) skips it meanwhile, and both lock the row before the stream, never the
            # other way round, so they cannot deadlock.
            await lock_task(conn, task_id)
            view, task = await load_task(conn, self.principal, task_id)
            self.caller.check_version(view.version)
            events = decide(task, datetime.now(UTC))
            if not events:
                return OperationResult(answer, respond(view, events))
            if not await self.append(
                conn, task_id, events, view.version, task.definition, view.created_by
            ):
                return await self.replayed(conn) or OperationResult(answer, None)
            after = (
                None
                if answer is Answer.DELETED
                else (await load_task(conn, self.principal, task_id))[0]
            )
            body = respond(after, events)
            return (
                await self.answer(conn, answer, body)
                if body is not None
                else OperationResult(answer, None)
            )


def _permitted(
    events: list[Event], scopes: Mapping[str, tuple[str, ...]], granted: frozenset[str]
) -> list[Event]:
    """The events, if the pipeline they set uses only tools within the caller's scopes."""
    for event in events:
        if isinstance(event, TaskCreated | TaskUpdated):
            check_tool_scopes(event.definition.payload, scopes, granted)
            check_shared_keys(event.definition, granted)
    return events


def _view(view: TaskView | None, _: list[Event]) -> object:
    return view


Changes = Callable[[TaskState], dict[str, Any]]


async def _updating(command: TaskCommand, task_id: str, changes: Changes) -> OperationResult:
    """Apply ``changes`` (computed from the task's current state) if the caller may."""
    async with command.backend.pool.acquire() as conn:
        scopes = await tool_scopes(conn)
    tools, granted = frozenset(scopes), command.principal.scopes
    shell_allow = command.backend.shell_allow
    return await command.on_task(
        task_id,
        lambda t, now: _permitted(
            decide_update(t, changes(t), now, tools, shell_allow, command.backend.limits),
            scopes,
            granted,
        ),
        _view,
    )


async def create_task(caller: Caller, backend: Backend, data: TaskBody) -> OperationResult:
    """Create a task, or update the caller's task with the same ``key``."""
    command = TaskCommand(caller, backend)
    definition = msgspec.convert(msgspec.to_builtins(data), TaskDefinition)
    actor = caller.principal.actor
    async with backend.pool.acquire() as conn, conn.transaction():
        if (prior := await command.replayed(conn)) is not None:
            return prior
        existing = None
        if data.key:
            # Concurrent creates with this key take turns from here to commit: each one after
            # the first finds its task (committed) and updates it instead of making another.
            await claim_task_keys(conn, actor, [data.key])
            existing = await task_id_by_key(conn, actor, data.key)
        if existing is None:
            return await _create(command, conn, definition)
    # A restatement of the whole task: only fields that really differ are changes.
    return await _updating(
        command, existing, lambda t: definition_changes(t.definition, definition)
    )


async def _create(
    command: TaskCommand, conn: Connection, definition: TaskDefinition
) -> OperationResult:
    """Append the new task's events in the caller's transaction, and answer with the task."""
    principal, backend = command.principal, command.backend
    # A task without steps needs no lookup of the catalog's scopes.
    scopes = await tool_scopes(conn) if uses_tools(definition.payload) else builtin_tool_scopes()
    task_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    events = _permitted(
        decide_create(
            task_id, definition, now, frozenset(scopes), backend.shell_allow, backend.limits
        ),
        scopes,
        principal.scopes,
    )
    if not await command.append(conn, task_id, events, 0, definition, principal.actor):
        return await command.replayed(conn) or OperationResult(Answer.CREATED, None)
    view, _ = await load_task(conn, principal, task_id)
    return await command.answer(conn, Answer.CREATED, view)


async def update_task(
    caller: Caller, backend: Backend, task_id: str, changes: dict[str, Any]
) -> OperationResult:
    """Change the given fields only; a schedule change recomputes the next run."""
    return await _updating(TaskCommand(caller, backend), task_id, lambda _: changes)


async def pause_task(caller: Caller, backend: Backend, task_id: str) -> OperationResult:
    """Stop firing until resumed."""
    return await TaskCommand(caller, backend).on_task(task_id, lambda t, _: decide_pause(t), _view)


async def resume_task(
    caller: Caller, backend: Backend, task_id: str, catch_up: bool
) -> OperationResult:
    """Fire again from now on (no catch-up storm unless ``catch_up``)."""
    return await TaskCommand(caller, backend).on_task(
        task_id, lambda t, now: decide_resume(t, now, catch_up), _view
    )


async def snooze_task(
    caller: Caller, backend: Backend, task_id: str, seconds: int | None, until: datetime | None
) -> OperationResult:
    """Move only the next occurrence, by ``seconds`` from its due time or to ``until``."""
    return await TaskCommand(caller, backend).on_task(
        task_id, lambda t, now: decide_snooze(t, now, seconds=seconds, until=until), _view
    )


def _run_started(_: TaskView | None, events: list[Event]) -> object:
    (requested,) = [e for e in events if isinstance(e, TaskRunRequested)]
    return RunStarted(requested.run_id)


async def run_task_now(caller: Caller, backend: Backend, task_id: str) -> OperationResult:
    """Queue a run now without disturbing the schedule (accepted, with its run id)."""
    run_id = str(uuid.uuid4())
    outcome = await TaskCommand(caller, backend).on_task(
        task_id, lambda t, now: decide_run_now(t, now, run_id), _run_started, Answer.ACCEPTED
    )
    await backend.announce([run_id])
    return outcome


async def cancel_task(caller: Caller, backend: Backend, task_id: str) -> OperationResult:
    """Never fire again (terminal)."""
    return await TaskCommand(caller, backend).on_task(task_id, lambda t, _: decide_cancel(t), _view)


async def delete_task(caller: Caller, backend: Backend, task_id: str) -> OperationResult:
    """Hide the task from reads; its events stay for audit."""
    return await TaskCommand(caller, backend).on_task(
        task_id, lambda t, _: decide_delete(t), lambda *_: None, Answer.DELETED
    )


async def find_tasks(
    caller: Caller, backend: Backend, filters: dict[str, Any], limit: int, cursor: str | None
) -> TaskPage:
    """The caller's tasks (admin: everyone's) matching ``filters``, oldest first."""
    after = decode_cursor(cursor) if cursor else None
    async with backend.pool.acquire() as conn:
        items = await list_tasks(conn, caller.principal, filters, limit, after)
    return TaskPage(items, encode_cursor(items[-1]) if len(items) == limit else None)


async def read_task(caller: Caller, backend: Backend, task_id: str) -> TaskView:
    """One live task of the caller's (admin: anyone's); NotFound otherwise."""
    async with backend.pool.acquire() as conn:
        view, _ = await load_task(conn, caller.principal, task_id)
    return view


async def task_occurrences(caller: Caller, backend: Backend, task_id: str, count: int) -> list[str]:
    """The next ``count`` occurrences, starting with the next run."""
    async with backend.pool.acquire() as conn:
        _, task = await load_task(conn, caller.principal, task_id)
    return [instant.isoformat() for instant in upcoming(task.definition, task.next_run_at, count)]


def upcoming(d: TaskDefinition, next_run_at: datetime | None, count: int) -> list[datetime]:
    """A task's next ``count`` occurrences from its next run, in its zone."""
    if next_run_at is None or d.schedule_kind not in ("cron", "rrule", "once"):
        return []
    schedule = load_schedule(d.schedule_kind, d.schedule_expr, d.timezone, d.dtstart)
    rest = next_occurrences(schedule, next_run_at, count - 1)
    first = next_run_at.astimezone(rest[0].tzinfo if rest else UTC)
    return [first, *rest]


async def task_history(caller: Caller, backend: Backend, task_id: str) -> list[StoredEvent]:
    """Every event of the task, in order (deleted tasks included, for audit)."""
    async with backend.pool.acquire() as conn:
        await load_task(conn, caller.principal, task_id)
        return await read_stream_stored(conn, task_stream(task_id))
