"""Task pages: the filterable list and one task (definition, timeline, runs, events)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from domain.events import task_stream
from services.api.state import AppState
from services.api.ui.access import caller_of, needs, session_of
from services.api.ui.formatting import decoded
from services.api.ui.forms import refuse
from services.api.ui.links import link
from services.api.ui.queries import TaskName
from services.api.ui.render import page
from services.api.ui.timeline import timeline
from services.application import runs as run_ops
from services.application import tasks as ops
from services.application.task_bodies import LastRun, TaskView
from services.store.events import read_stream_latest

STATUSES = ("active", "paused", "canceled", "completed")
KINDS = ("cron", "rrule", "once", "event", "condition")
PAGE_SIZE = 50
TIMELINE = 20
HISTORY = 50

Query = FromQuery[str | None]


@dataclass(frozen=True)
class TaskRow:
    """A task as the list and the task page show it."""

    id: str
    title: str
    status: str
    kind: str
    expr: str
    timezone: str
    next_run_at: datetime | None
    last_run: LastRun | None
    created_by: str
    definition: dict[str, Any]


def task_row(view: TaskView) -> TaskRow:
    """The view with its definition decoded."""
    d = decoded(view.definition)
    return TaskRow(
        view.id,
        d.get("title", ""),
        view.status,
        d.get("schedule_kind", ""),
        d.get("schedule_expr", ""),
        d.get("timezone", "UTC"),
        view.next_run_at,
        view.last_run,
        view.created_by,
        d,
    )


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value in (None, ""):
        return None
    if value not in allowed:
        raise refuse(name, f"must be one of {', '.join(allowed)}")
    return value


@get("/tasks", opt=needs("tasks:read"), name="ui_tasks")
async def task_list(
    request: Request[Any, Any, Any],
    state: AppState,
    status: Query = None,
    kind: Query = None,
    q: Query = None,
    cursor: Query = None,
) -> Template:
    """Tasks, oldest first, filtered by status, kind and title text."""
    if q is not None and len(q) > 200:
        raise refuse("q", "must be at most 200 characters")
    filters = {
        "status": _choice("status", status, STATUSES),
        "schedule_kind": _choice("kind", kind, KINDS),
        "title": q or None,
    }
    found = await ops.find_tasks(
        caller_of(request), state.backend, filters, PAGE_SIZE, cursor or None
    )
    chosen = {"status": status or "", "kind": kind or "", "q": q or ""}
    after = found.next
    return page(
        request,
        "tasks.html",
        rows=[task_row(v) for v in found.items],
        chosen=chosen,
        statuses=STATUSES,
        kinds=KINDS,
        paged=bool(cursor),
        next_url=link("/ui/tasks", {**chosen, "cursor": after}) if after else None,
        first_url=link("/ui/tasks", chosen),
        here=link("/ui/tasks", {**chosen, "cursor": cursor}),
    )


def actions(row: TaskRow) -> list[str]:
    """The buttons that apply to the task in its state."""
    if row.status not in ("active", "paused"):
        return []
    found = ["run-now", "pause" if row.status == "active" else "resume"]
    if row.next_run_at is not None:
        found.append("snooze")
    return [*found, "cancel"]


@get("/tasks/{task_id:str}", opt=needs("tasks:read"), name="ui_task")
async def task_page(
    request: Request[Any, Any, Any], state: AppState, task_id: FromPath[str]
) -> Template:
    """One task: its definition, next occurrences, runs and events."""
    caller, backend = caller_of(request), state.backend
    row = task_row(await ops.read_task(caller, backend, task_id))
    found = await ops.task_occurrences(caller, backend, task_id, TIMELINE)
    marks = timeline([datetime.fromisoformat(at) for at in found], row.timezone, datetime.now(UTC))
    runs = None
    if session_of(request).can("runs:read"):
        runs = (await run_ops.find_runs(caller, backend, None, task_id, 20, None)).items
    async with state.pool.acquire() as conn:
        events = await read_stream_latest(conn, task_stream(task_id), HISTORY)
    names = {row.id: TaskName(row.title, row.timezone)}
    return page(
        request,
        "task.html",
        task=row,
        marks=marks,
        runs=runs,
        events=events,
        names=names,
        actions=actions(row),
        history_limit=HISTORY,
    )
