"""Run pages: the filterable list, one run with its steps (live), and the bulk-retry check."""

from __future__ import annotations

import typing
import uuid
from typing import Any

from litestar import Request, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from domain.envelope import decode_meta
from domain.runs import RunStatus
from services.api.state import AppState
from services.api.ui.access import caller_of, needs, session_of
from services.api.ui.forms import refuse
from services.api.ui.links import link
from services.api.ui.queries import dead_count, task_names
from services.api.ui.render import page
from services.application import runs as ops
from services.runtime.tracing import trace_id_of
from services.store.events import StoredEvent

STATUSES: tuple[str, ...] = typing.get_args(RunStatus)
# A run in these states may still change by itself, so its page keeps polling.
CHANGING = ("queued", "running", "deferred", "waiting")
PAGE_SIZE = 50

Query = FromQuery[str | None]


def _status(value: str | None) -> str | None:
    if not value:
        return None
    if value not in STATUSES:
        raise refuse("status", f"must be one of {', '.join(STATUSES)}")
    return value


def _task_id(value: str | None) -> str | None:
    if not value:
        return None
    try:
        uuid.UUID(value)
    except ValueError:
        raise refuse("task_id", "must be a task id") from None
    return value


@get("/runs", opt=needs("runs:read"), name="ui_runs")
async def run_list(
    request: Request[Any, Any, Any],
    state: AppState,
    status: Query = None,
    task_id: Query = None,
    cursor: Query = None,
) -> Template:
    """Runs, newest first, filtered by status and task."""
    chosen = {"status": _status(status) or "", "task_id": _task_id(task_id) or ""}
    found = await ops.find_runs(
        caller_of(request),
        state.backend,
        chosen["status"] or None,
        chosen["task_id"] or None,
        PAGE_SIZE,
        cursor or None,
    )
    names = await task_names(state.pool, {run.task_id for run in found.items})
    next_url = link("/ui/runs", {**chosen, "cursor": found.next}) if found.next else None
    return page(
        request,
        "runs.html",
        runs=found.items,
        names=names,
        chosen=chosen,
        statuses=STATUSES,
        next_url=next_url,
        first_url=link("/ui/runs", chosen),
        paged=bool(cursor),
    )


@get("/runs/retry-dead", opt=needs("tasks:write"), name="ui_retry_dead")
async def retry_dead_check(request: Request[Any, Any, Any], state: AppState) -> Template:
    """How many dead runs a bulk retry would revive, and the button that does it."""
    count = await dead_count(state.pool, session_of(request).principal)
    return page(request, "retry_dead.html", count=count)


@get("/runs/{run_id:str}", opt=needs("runs:read"), name="ui_run")
async def run_page(
    request: Request[Any, Any, Any], state: AppState, run_id: FromPath[str]
) -> Template:
    """One run: status, every step's rendered input, output, error and duration, its events.
    htmx polls this page (taking only the live part, events included) while the run may still
    change. The run is read before its history, so the events shown are never behind the status."""
    caller, backend = caller_of(request), state.backend
    run = await ops.read_run(caller, backend, run_id)
    names = await task_names(state.pool, {run.task_id})
    history = await ops.run_history(caller, backend, run_id)
    return page(
        request,
        "run.html",
        run=run,
        task=names.get(run.task_id),
        history=history,
        live=run.status in CHANGING,
        trace_id=_trace_id(history),
    )


def _trace_id(history: list[StoredEvent]) -> str | None:
    """The trace the run continues: the one its ``run.queued`` was appended in, if traced."""
    queued = next((e for e in history if e.type == "run.queued"), None)
    return None if queued is None else trace_id_of(decode_meta(queued.meta).traceparent)
