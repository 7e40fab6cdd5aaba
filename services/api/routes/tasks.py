"""Task commands (each appends events) and reads (each from the task read model)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from domain.envelope import EventMeta
from domain.events import (
    Event,
    TaskCreated,
    TaskDefinition,
    TaskRunRequested,
    TaskUpdated,
    run_stream,
    task_stream,
)
from domain.pipeline import check_tool_scopes
from domain.runs import queue_runs
from domain.schedules import next_occurrences
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
from services.api.auth import principal_of, requires
from services.api.problems import ApiError, FieldError
from services.api.task_bodies import (
    Resume,
    RunStarted,
    Snooze,
    TaskBody,
    TaskPage,
    TaskPatch,
    TaskView,
    patch_changes,
)
from services.api.task_store import (
    decode_cursor,
    encode_cursor,
    list_tasks,
    load_task,
    remember,
    replay,
    task_id_by_key,
)
from services.api.tool_store import tool_scopes
from services.store.events import (
    StoredEvent,
    StreamAppend,
    append_in_transaction,
    read_stream_stored,
)
from services.timer.service import load_schedule

Decide = Callable[[TaskState, datetime], list[Event]]
Respond = Callable[[TaskView | None, list[Event]], object]
_VERSION = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def _fingerprint(request: Request[Any, Any, Any], body: bytes) -> str:
    return hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + body).hexdigest()


def _check_if_match(request: Request[Any, Any, Any], version: int) -> None:
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return
    match = _VERSION.match(header)
    if match is None:
        raise ApiError(422, "Invalid request", "If-Match: must be the task's version",
                       [FieldError("If-Match", "must be the task's version")])  # fmt: skip
    if int(match.group(1)) != version:
        raise ApiError(409, "Version conflict", f"the task is at version {version}")


class _Command:
    """One idempotent command on one task, in one transaction."""

    def __init__(self, request: Request[Any, Any, Any], state: State, body: bytes) -> None:
        self.request, self.state = request, state
        self.principal = principal_of(request)
        self.key = request.headers.get("idempotency-key")
        self.fingerprint = _fingerprint(request, body)

    def meta(self) -> EventMeta:
        return EventMeta(
            actor=self.principal.actor,
            correlation_id=self.request.scope["state"]["correlation_id"],
            idempotency_key=self.key,
        )

    async def replayed(self, conn: Connection) -> Response[Any] | None:
        if self.key is None:
            return None
        prior = await replay(conn, self.principal.actor, self.key, self.fingerprint)
        return None if prior is None else Response(prior[1], status_code=prior[0])

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
        result = await append_in_transaction(
            conn, appends, self.meta(), self.state.projections, fingerprint=self.fingerprint
        )
        return not result.replayed

    async def answer(self, conn: Connection, status: int, body: object) -> Response[Any]:
        if self.key is not None:
            await remember(conn, self.principal.actor, self.key, status, body)
        return Response(body, status_code=status)

    async def on_task(
        self, task_id: str, decide: Decide, respond: Respond, status: int = 200
    ) -> Response[Any]:
        async with self.state.pool.acquire() as conn, conn.transaction():
            if (prior := await self.replayed(conn)) is not None:
                return prior
            view, task = await load_task(conn, self.principal, task_id)
            _check_if_match(self.request, view.version)
            events = decide(task, datetime.now(UTC))
            if not events:
                return Response(respond(view, events), status_code=status)
            if not await self.append(
                conn, task_id, events, view.version, task.definition, view.created_by
            ):
                return await self.replayed(conn) or Response(None, status_code=status)
            after = None if status == 204 else (await load_task(conn, self.principal, task_id))[0]
            body = respond(after, events)
            return (
                await self.answer(conn, status, body)
                if body is not None
                else Response(None, status_code=status)
            )


def _permitted(
    events: list[Event], scopes: Mapping[str, tuple[str, ...]], granted: frozenset[str]
) -> list[Event]:
    """The events, if the pipeline they set uses only tools within the caller's scopes."""
    for event in events:
        if isinstance(event, TaskCreated | TaskUpdated):
            check_tool_scopes(event.definition.payload, scopes, granted)
    return events


def _view(view: TaskView | None, _: list[Event]) -> object:
    return view


@post("/tasks", guards=[requires("tasks:write")], tags=["tasks"], summary="Create a task")
async def create_task(
    request: Request[Any, Any, Any], state: State, data: JSONBody[TaskBody]
) -> Response[Any]:
    """Create a task (201), or update the caller's task with the same ``key`` (200)."""
    command = _Command(request, state, await request.body())
    definition = msgspec.convert(msgspec.to_builtins(data), TaskDefinition)
    async with state.pool.acquire() as conn:
        existing = data.key and await task_id_by_key(conn, command.principal.actor, data.key)
        scopes = await tool_scopes(conn)
    tools, granted = frozenset(scopes), command.principal.scopes
    shell_allow = state.shell_allow
    if existing:
        # A restatement of the whole task: only fields that really differ are changes.
        return await command.on_task(
            existing,
            lambda t, now: _permitted(
                decide_update(
                    t, definition_changes(t.definition, definition), now, tools, shell_allow
                ),
                scopes,
                granted,
            ),
            _view,
        )
    task_id = str(uuid.uuid4())
    events = _permitted(
        decide_create(task_id, definition, datetime.now(UTC), tools, shell_allow), scopes, granted
    )
    async with state.pool.acquire() as conn, conn.transaction():
        if (prior := await command.replayed(conn)) is not None:
            return prior
        if not await command.append(conn, task_id, events, 0, definition, command.principal.actor):
            return await command.replayed(conn) or Response(None, status_code=201)
        view, _ = await load_task(conn, command.principal, task_id)
        return await command.answer(conn, 201, view)


@patch("/tasks/{task_id:str}", guards=[requires("tasks:write")], tags=["tasks"])
async def update_task(
    request: Request[Any, Any, Any],
    state: State,
    task_id: FromPath[str],
    data: JSONBody[TaskPatch],  # type: ignore[valid-type]  # generated from TaskBody
) -> Response[Any]:
    """Change the given fields only; a schedule change recomputes the next run."""
    changes = patch_changes(data)
    command = _Command(request, state, await request.body())
    async with state.pool.acquire() as conn:
        scopes = await tool_scopes(conn)
    tools, granted = frozenset(scopes), command.principal.scopes
    return await command.on_task(
        task_id,
        lambda t, now: _permitted(
            decide_update(t, changes, now, tools, state.shell_allow), scopes, granted
        ),
        _view,
    )


@post(
    "/tasks/{task_id:str}/pause", guards=[requires("tasks:write")], tags=["tasks"], status_code=200
)
async def pause_task(
    request: Request[Any, Any, Any], state: State, task_id: FromPath[str]
) -> Response[Any]:
    """Stop firing until resumed."""
    command = _Command(request, state, await request.body())
    return await command.on_task(task_id, lambda t, _: decide_pause(t), _view)


@post(
    "/tasks/{task_id:str}/resume", guards=[requires("tasks:write")], tags=["tasks"], status_code=200
)
async def resume_task(
    request: Request[Any, Any, Any], state: State, task_id: FromPath[str],
    data: JSONBody[Resume | None] = None,
) -> Response[Any]:  # fmt: skip
    """Fire again from now on (no catch-up storm unless ``catch_up`` is true)."""
    catch_up = bool(data and data.catch_up)
    command = _Command(request, state, await request.body())
    return await command.on_task(task_id, lambda t, now: decide_resume(t, now, catch_up), _view)


@post(
    "/tasks/{task_id:str}/snooze", guards=[requires("tasks:write")], tags=["tasks"], status_code=200
)
async def snooze_task(
    request: Request[Any, Any, Any], state: State, task_id: FromPath[str], data: JSONBody[Snooze]
) -> Response[Any]:
    """Move only the next occurrence."""
    command = _Command(request, state, await request.body())
    return await command.on_task(
        task_id,
        lambda t, now: decide_snooze(t, now, seconds=data.seconds, until=data.until),
        _view,
    )


def _run_started(_: TaskView | None, events: list[Event]) -> object:
    (requested,) = [e for e in events if isinstance(e, TaskRunRequested)]
    return RunStarted(requested.run_id)


@post(
    "/tasks/{task_id:str}/run_now",
    guards=[requires("tasks:write")],
    tags=["tasks"],
    status_code=202,
)
async def run_task_now(
    request: Request[Any, Any, Any], state: State, task_id: FromPath[str]
) -> Response[Any]:
    """Queue a run now without disturbing the schedule (202 with its run id)."""
    run_id = str(uuid.uuid4())
    command = _Command(request, state, await request.body())
    response = await command.on_task(
        task_id, lambda t, now: decide_run_now(t, now, run_id), _run_started, 202
    )
    await state.announcer.announce([run_id])
    return response


@post(
    "/tasks/{task_id:str}/cancel", guards=[requires("tasks:write")], tags=["tasks"], status_code=200
)
async def cancel_task(
    request: Request[Any, Any, Any], state: State, task_id: FromPath[str]
) -> Response[Any]:
    """Never fire again (terminal)."""
    command = _Command(request, state, await request.body())
    return await command.on_task(task_id, lambda t, _: decide_cancel(t), _view)


@delete("/tasks/{task_id:str}", guards=[requires("tasks:write")], tags=["tasks"], status_code=204)
async def delete_task(
    request: Request[Any, Any, Any], state: State, task_id: FromPath[str]
) -> None:
    """Hide the task from reads; its events stay for audit."""
    command = _Command(request, state, b"")
    await command.on_task(task_id, lambda t, _: decide_delete(t), lambda *_: None, 204)


@get("/tasks", guards=[requires("tasks:read")], tags=["tasks"], summary="List tasks")
async def get_tasks(
    request: Request[Any, Any, Any],
    state: State,
    status: Annotated[
        str | None, QueryParameter(description="active, paused, canceled, completed")
    ] = None,
    schedule_kind: FromQuery[str | None] = None,
    created_by: FromQuery[str | None] = None,
    key: FromQuery[str | None] = None,
    q: Annotated[
        str | None, QueryParameter(max_length=200, description="text in the title")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    cursor: FromQuery[str | None] = None,
) -> TaskPage:
    """The caller's tasks (admin: everyone's), oldest first, cursor-paginated."""
    filters = {"status": status, "schedule_kind": schedule_kind, "created_by": created_by,
               "key": key, "title": q}  # fmt: skip
    after = decode_cursor(cursor) if cursor else None
    async with state.pool.acquire() as conn:
        items = await list_tasks(conn, principal_of(request), filters, limit, after)
    return TaskPage(items, encode_cursor(items[-1]) if len(items) == limit else None)


@get("/tasks/{task_id:str}", guards=[requires("tasks:read")], tags=["tasks"])
async def get_task(
    request: Request[Any, Any, Any], state: State, task_id: FromPath[str]
) -> Response[TaskView]:
    """One task; its version is also the ETag (use it in If-Match)."""
    async with state.pool.acquire() as conn:
        view, _ = await load_task(conn, principal_of(request), task_id)
    return Response(view, headers={"ETag": f'"{view.version}"'})


@get("/tasks/{task_id:str}/occurrences", guards=[requires("tasks:read")], tags=["tasks"])
async def get_occurrences(
    request: Request[Any, Any, Any], state: State, task_id: FromPath[str],
    count: Annotated[int, QueryParameter(ge=1, le=1000)] = 10,
) -> dict[str, list[str]]:  # fmt: skip
    """The next ``count`` occurrences, starting with the next run."""
    async with state.pool.acquire() as conn:
        _, task = await load_task(conn, principal_of(request), task_id)
    d = task.definition
    if task.next_run_at is None or d.schedule_kind not in ("cron", "rrule", "once"):
        return {"occurrences": []}
    schedule = load_schedule(d.schedule_kind, d.schedule_expr, d.timezone, d.dtstart)
    rest = next_occurrences(schedule, task.next_run_at, count - 1)
    first = task.next_run_at.astimezone(rest[0].tzinfo if rest else UTC)
    return {"occurrences": [instant.isoformat() for instant in [first, *rest]]}


@get("/tasks/{task_id:str}/history", guards=[requires("tasks:read")], tags=["tasks"])
async def get_history(
    request: Request[Any, Any, Any], state: State, task_id: FromPath[str]
) -> dict[str, list[StoredEvent]]:
    """Every event of the task, in order (deleted tasks included, for audit)."""
    async with state.pool.acquire() as conn:
        await load_task(conn, principal_of(request), task_id)
        items = await read_stream_stored(conn, task_stream(task_id))
    return {"items": items}


ROUTES = [create_task, update_task, pause_task, resume_task, snooze_task, run_task_now,
          cancel_task, delete_task, get_tasks, get_task, get_occurrences, get_history]  # fmt: skip
