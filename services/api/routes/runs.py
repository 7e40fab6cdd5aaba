"""Run routes: thin HTTP adapters over the run operations (services/application/runs)."""

from __future__ import annotations

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from services.api.auth import requires
from services.api.cursors import DEFAULT_LIMIT, Cursor, Limit
from services.application import reruns
from services.application import runs as ops
from services.application.context import Backend, Caller
from services.application.reruns import Rerun
from services.application.runs import Decision, RunPage, RunStatusFilter, RunView
from services.store.events import StoredEvent

__all__ = ["ROUTES", "Decision", "Rerun", "RunPage", "RunView"]


@get("/runs", guards=[requires("runs:read")], tags=["runs"], summary="List runs")
async def list_runs(
    caller: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    status: FromQuery[RunStatusFilter | None] = None,
    task_id: FromQuery[str | None] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> RunPage:
    """The caller's runs (admin: all), newest first, filtered by status and task."""
    return await ops.find_runs(caller, backend, status, task_id, limit, cursor)


@get("/runs/{run_id:str}", guards=[requires("runs:read")], tags=["runs"], summary="Read a run")
async def get_run(
    caller: NamedDependency[Caller], backend: NamedDependency[Backend], run_id: FromPath[str]
) -> RunView:
    """One run with every step's rendered input, output or error, and duration."""
    return await ops.read_run(caller, backend, run_id)


@get(
    "/runs/{run_id:str}/history",
    guards=[requires("runs:read")],
    tags=["runs"],
    summary="Every event of a run",
)
async def get_run_history(
    caller: NamedDependency[Caller], backend: NamedDependency[Backend], run_id: FromPath[str]
) -> dict[str, list[StoredEvent]]:
    """The run's events (stream ``run-<id>``) in order: attempts, steps, approvals, outcome."""
    return {"items": await ops.run_history(caller, backend, run_id)}


@post("/runs/{run_id:str}/cancel", guards=[requires("tasks:write")], tags=["runs"], status_code=200)
async def cancel_run(
    run_id: FromPath[str],
    steering: NamedDependency[Caller],
    backend: NamedDependency[Backend],
) -> RunView:
    """Cancel a queued or parked run now; a running one stops at its next step boundary."""
    return await ops.cancel_run(steering, backend, run_id)


@post("/runs/{run_id:str}/retry", guards=[requires("tasks:write")], tags=["runs"], status_code=200)
async def retry_run(
    run_id: FromPath[str],
    steering: NamedDependency[Caller],
    backend: NamedDependency[Backend],
) -> RunView:
    """Give a dead run one more attempt now; steps that succeeded are not run again."""
    return await ops.retry_run(steering, backend, run_id)


@post(
    "/runs/{run_id:str}/approve", guards=[requires("runs:approve")], tags=["runs"], status_code=200
)
async def approve_run(
    run_id: FromPath[str],
    steering: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    data: JSONBody[Decision | None] = None,
) -> RunView:
    """Approve the step the run waits at (optionally only ``approved_items``); it resumes."""
    return await ops.decide_run(steering, backend, run_id, True, data)


@post(
    "/runs/{run_id:str}/reject", guards=[requires("runs:approve")], tags=["runs"], status_code=200
)
async def reject_run(
    run_id: FromPath[str],
    steering: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    data: JSONBody[Decision | None] = None,
) -> RunView:
    """Reject the step the run waits at; it resumes and sees ``status: rejected``."""
    return await ops.decide_run(steering, backend, run_id, False, data)


@post("/runs/{run_id:str}/rerun", guards=[requires("tasks:write")], tags=["runs"], status_code=201)
async def rerun_run(
    run_id: FromPath[str],
    data: JSONBody[Rerun],
    steering: NamedDependency[Caller],
    backend: NamedDependency[Backend],
) -> RunView:
    """Start a new run of this finished run's task from ``from_step``: the steps before it keep
    this run's outputs (their tools are not called again). 409 if the pipeline changed before
    ``from_step`` or a kept step did not succeed; 422 for a step the pipeline does not have."""
    return await reruns.rerun(steering, backend, run_id, data)


ROUTES = [
    list_runs,
    get_run,
    get_run_history,
    cancel_run,
    retry_run,
    approve_run,
    reject_run,
    rerun_run,
]
