"""The overview: what fires next, what failed, what waits for approval, and how Ordinaut is."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from services.api.state import AppState
from services.api.ui.access import caller_of, session_of
from services.api.ui.queries import (
    dead_letters,
    next_firings,
    run_counts,
    task_counts,
    task_names,
)
from services.api.ui.render import page
from services.application import runs as run_ops
from services.health.report import report

LISTED = 10


@get("/", name="ui_overview")
async def overview(request: Request[Any, Any, Any], state: AppState) -> Template:
    """Counts, health numbers and short lists, each shown if the token may see it."""
    session = session_of(request)
    principal, pool = session.principal, state.pool
    context: dict[str, Any] = {"health": await report(pool, state.redis, state.events_stream)}
    if session.can("tasks:read"):
        context["task_counts"] = await task_counts(pool, principal)
        context["firings"] = await next_firings(pool, principal, LISTED)
    if session.can("runs:read"):
        caller, backend = caller_of(request), state.backend
        context["run_counts"] = await run_counts(pool, principal)
        context["failures"] = (
            await run_ops.find_runs(caller, backend, "dead", None, LISTED, None)
        ).items
        context["approvals"] = (
            await run_ops.find_runs(caller, backend, "awaiting_approval", None, LISTED, None)
        ).items
        context["waiting"] = (
            await run_ops.find_runs(caller, backend, "waiting", None, LISTED, None)
        ).items
        runs = [*context["failures"], *context["approvals"], *context["waiting"]]
        context["names"] = await task_names(pool, {run.task_id for run in runs})
    if session.can("admin"):
        context["dead_letters"] = await dead_letters(state.redis, LISTED)
    return page(request, "overview.html", **context)
