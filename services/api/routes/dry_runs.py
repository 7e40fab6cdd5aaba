"""Dry runs over HTTP: check a pipeline before (or without) scheduling it."""

from __future__ import annotations

from litestar import post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from services.api.auth import requires
from services.application import dry_runs as ops
from services.application.context import Backend, Caller
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
    task_id: FromPath[str],
    caller: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    data: JSONBody[DryRunOptions | None] = None,
) -> DryRun:
    """Render and validate every step with fake tool outputs; nothing is called or recorded."""
    options = data or DryRunOptions()
    return await ops.dry_run_task(caller, backend, task_id, options)


@post(
    "/tasks/dry_run",
    guards=[requires("tasks:read")],
    tags=["tasks"],
    status_code=200,
    summary="Dry-run a pipeline without creating the task",
)
async def dry_run_new_task(
    caller: NamedDependency[Caller], backend: NamedDependency[Backend], data: JSONBody[DryRunBody]
) -> DryRun:
    """Validate the task as POST /tasks would (422 if invalid), then dry-run its pipeline."""
    return await ops.dry_run_new_task(caller, backend, data)


ROUTES = [dry_run_new_task, dry_run_task]
