"""Dry runs over HTTP: check a pipeline before (or without) scheduling it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from domain.events import TaskDefinition
from domain.tasks import prepare_definition
from services.api.auth import principal_of, requires
from services.api.dry_run import DryRun, dry_run
from services.api.task_bodies import TaskBody
from services.api.task_store import load_task
from services.api.tool_store import known_tool_addresses
from services.secrets.vault import SecretVault
from services.worker.service import ToolCatalog


class DryRunOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the dry run pretends: other params, or the event that triggered the run."""

    params: dict[str, Any] | None = None
    event: dict[str, Any] | None = None


def _with_params(definition: TaskDefinition, params: dict[str, Any] | None) -> TaskDefinition:
    if params is None:
        return definition
    payload = {**definition.payload, "params": params}
    return msgspec.structs.replace(definition, payload=payload)


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
    async with state.pool.acquire() as conn:
        view, task = await load_task(conn, principal_of(request), task_id)
    definition = _with_params(task.definition, options.params)
    return await dry_run(
        task_id,
        definition.title,
        definition,
        view.created_by,
        ToolCatalog(state.pool).find,
        options.event,
        SecretVault(state.pool, None, reveal=False).for_tool,
    )


class DryRunBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A task as it would be created, and optionally the event that triggers the run."""

    task: TaskBody
    event: dict[str, Any] | None = None


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
    definition = msgspec.convert(msgspec.to_builtins(data.task), TaskDefinition)
    async with state.pool.acquire() as conn:
        tools = await known_tool_addresses(conn)
    prepared = prepare_definition(definition, datetime.now(UTC), tools, state.shell_allow)
    return await dry_run(
        "dry-run",
        prepared.title,
        prepared,
        principal_of(request).actor,
        ToolCatalog(state.pool).find,
        data.event,
        SecretVault(state.pool, None, reveal=False).for_tool,
    )


ROUTES = [dry_run_new_task, dry_run_task]
