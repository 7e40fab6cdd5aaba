"""Dry runs over HTTP: check a pipeline before (or without) scheduling it."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from services.api.auth import requires
from services.api.calls import backend_of, caller_of
from services.application import dry_runs as ops
from services.application.dry_run import DryRun
from services.application.dry_runs import DryRunBody, DryRunOptions


@post(
    "/tasks/{task_id:str}/dry_run",
    guards=[requires("tasks:read")],
    tags=["tasks"],
    status_code=200,
    summary="Dry-run a task's pipeline",
)
async def dry_run_task(
    request: Request[Any, Any, Any],
    state: State,
    task_id: FromPath[str],
    data: JSONBody[DryRunOptions | None] = None,
) -> DryRun:
    """Render and validate every step with fake tool outputs; nothing is called or recorded."""
    options = data or DryRunOptions()
    return await ops.dry_run_task(caller_of(request), backend_of(state), task_id, options)


@post(
    "/tasks/dry_run",
    guards=[requires("tasks:read")],
    tags=["tasks"],
    status_code=200,
    summary="Dry-run a pipeline without creating the task",
)
async def dry_run_new_task(
    request: Request[Any, Any, Any], state: State, data: JSONBody[DryRunBody]
) -> DryRun:
    """Validate the task as POST /tasks would (422 if invalid), then dry-run its pipeline."""
    return await ops.dry_run_new_task(caller_of(request), backend_of(state), data)


ROUTES = [dry_run_new_task, dry_run_task]
