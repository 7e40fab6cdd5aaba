"""Task routes: thin HTTP adapters over the task operations (services/application/tasks)."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from domain.events import ScheduleKind
from services.api.auth import requires
from services.api.calls import respond
from services.api.cursors import DEFAULT_LIMIT, Cursor, Limit
from services.application import tasks as ops
from services.application.context import Backend, Caller
from services.application.task_bodies import (
    Resume,
    RunStarted,
    Snooze,
    TaskBody,
    TaskPage,
    TaskPatch,
    TaskStatus,
    TaskView,
    patch_changes,
)
from services.store.events import StoredEvent


@post(
    "/tasks",
    guards=[requires("tasks:write")],
    tags=["tasks"],
    summary="Create a task",
    responses={200: ResponseSpec(TaskView, description="The caller's task with this key, updated")},
)
async def create_task(
    command: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    data: JSONBody[TaskBody],
) -> Response[TaskView]:
    """Create a task (201), or update the caller's task with the same ``key`` (200)."""
    return respond(await ops.create_task(command, backend, data))


@patch("/tasks/{task_id:str}", guards=[requires("tasks:write")], tags=["tasks"])
async def update_task(
    task_id: FromPath[str],
    command: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    data: JSONBody[TaskPatch],  # type: ignore[valid-type]  # generated from TaskBody
) -> Response[TaskView]:
    """Change the given fields only; a schedule change recomputes the next run."""
    return respond(await ops.update_task(command, backend, task_id, patch_changes(data)))


@post(
    "/tasks/{task_id:str}/pause", guards=[requires("tasks:write")], tags=["tasks"], status_code=200
)
async def pause_task(
    task_id: FromPath[str],
    command: NamedDependency[Caller],
    backend: NamedDependency[Backend],
) -> Response[TaskView]:
    """Stop firing until resumed."""
    return respond(await ops.pause_task(command, backend, task_id))


@post(
    "/tasks/{task_id:str}/resume", guards=[requires("tasks:write")], tags=["tasks"], status_code=200
)
async def resume_task(
    task_id: FromPath[str],
    command: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    data: JSONBody[Resume | None] = None,
) -> Response[TaskView]:
    """Fire again from now on (no catch-up storm unless ``catch_up`` is true)."""
    catch_up = bool(data and data.catch_up)
    return respond(await ops.resume_task(command, backend, task_id, catch_up))


@post(
    "/tasks/{task_id:str}/snooze", guards=[requires("tasks:write")], tags=["tasks"], status_code=200
)
async def snooze_task(
    task_id: FromPath[str],
    command: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    data: JSONBody[Snooze],
) -> Response[TaskView]:
    """Move only the next occurrence."""
    return respond(await ops.snooze_task(command, backend, task_id, data.seconds, data.until))


@post(
    "/tasks/{task_id:str}/run_now",
    guards=[requires("tasks:write")],
    tags=["tasks"],
    status_code=202,
)
async def run_task_now(
    task_id: FromPath[str],
    command: NamedDependency[Caller],
    backend: NamedDependency[Backend],
) -> Response[RunStarted]:
    """Queue a run now without disturbing the schedule (202 with its run id)."""
    return respond(await ops.run_task_now(command, backend, task_id))


@post(
    "/tasks/{task_id:str}/cancel", guards=[requires("tasks:write")], tags=["tasks"], status_code=200
)
async def cancel_task(
    task_id: FromPath[str],
    command: NamedDependency[Caller],
    backend: NamedDependency[Backend],
) -> Response[TaskView]:
    """Never fire again (terminal)."""
    return respond(await ops.cancel_task(command, backend, task_id))


@delete("/tasks/{task_id:str}", guards=[requires("tasks:write")], tags=["tasks"], status_code=204)
async def delete_task(
    task_id: FromPath[str],
    command: NamedDependency[Caller],
    backend: NamedDependency[Backend],
) -> None:
    """Hide the task from reads; its events stay for audit."""
    await ops.delete_task(command, backend, task_id)


@get("/tasks", guards=[requires("tasks:read")], tags=["tasks"], summary="List tasks")
async def get_tasks(
    caller: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    status: FromQuery[TaskStatus | None] = None,
    schedule_kind: FromQuery[ScheduleKind | None] = None,
    created_by: FromQuery[str | None] = None,
    key: FromQuery[str | None] = None,
    q: Annotated[
        str | None, QueryParameter(max_length=200, description="text in the title")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> TaskPage:
    """The caller's tasks (admin: everyone's), oldest first, cursor-paginated."""
    filters = {
        "status": status,
        "schedule_kind": schedule_kind,
        "created_by": created_by,
        "key": key,
        "title": q,
    }
    return await ops.find_tasks(caller, backend, filters, limit, cursor)


@get("/tasks/{task_id:str}", guards=[requires("tasks:read")], tags=["tasks"])
async def get_task(
    caller: NamedDependency[Caller], backend: NamedDependency[Backend], task_id: FromPath[str]
) -> Response[TaskView]:
    """One task; its version is also the ETag (use it in If-Match)."""
    view = await ops.read_task(caller, backend, task_id)
    return Response(view, headers={"ETag": f'"{view.version}"'})


@get("/tasks/{task_id:str}/occurrences", guards=[requires("tasks:read")], tags=["tasks"])
async def get_occurrences(
    caller: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    task_id: FromPath[str],
    count: Annotated[int, QueryParameter(ge=1, le=1000)] = 10,
) -> dict[str, list[str]]:
    """The next ``count`` occurrences, starting with the next run."""
    found = await ops.task_occurrences(caller, backend, task_id, count)
    return {"occurrences": found}


@get("/tasks/{task_id:str}/history", guards=[requires("tasks:read")], tags=["tasks"])
async def get_history(
    caller: NamedDependency[Caller], backend: NamedDependency[Backend], task_id: FromPath[str]
) -> dict[str, list[StoredEvent]]:
    """Every event of the task, in order (deleted tasks included, for audit)."""
    return {"items": await ops.task_history(caller, backend, task_id)}


ROUTES = [
    create_task,
    update_task,
    pause_task,
    resume_task,
    snooze_task,
    run_task_now,
    cancel_task,
    delete_task,
    get_tasks,
    get_task,
    get_occurrences,
    get_history,
]
