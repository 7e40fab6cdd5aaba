"""Dry runs: render and validate a pipeline with fake tool outputs; nothing is called."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from domain.events import TaskDefinition
from domain.tasks import prepare_definition
from services.application.context import Backend, Caller
from services.application.dry_run import DryRun, dry_run
from services.application.task_bodies import TaskBody
from services.application.task_store import load_task
from services.application.tool_store import known_tool_addresses
from services.secrets.vault import SecretVault
from services.tools.catalog import ToolCatalog


class DryRunOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the dry run pretends: other params, or the event that triggered the run."""

    params: dict[str, Any] | None = None
    event: dict[str, Any] | None = None


class DryRunBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A task as it would be created, and optionally the event that triggers the run."""

    task: TaskBody
    event: dict[str, Any] | None = None


def _with_params(definition: TaskDefinition, params: dict[str, Any] | None) -> TaskDefinition:
    if params is None:
        return definition
    payload = {**definition.payload, "params": params}
    return msgspec.structs.replace(definition, payload=payload)


async def dry_run_task(
    caller: Caller, backend: Backend, task_id: str, options: DryRunOptions
) -> DryRun:
    """Dry-run an existing task's pipeline (with other params or event, if given)."""
    async with backend.pool.acquire() as conn:
        view, task = await load_task(conn, caller.principal, task_id)
    definition = _with_params(task.definition, options.params)
    return await dry_run(
        task_id,
        definition.title,
        definition,
        view.created_by,
        ToolCatalog(backend.pool).find,
        options.event,
        SecretVault(backend.pool, None, reveal=False).for_tool,
        backend.limits,
    )


async def dry_run_new_task(caller: Caller, backend: Backend, data: DryRunBody) -> DryRun:
    """Validate the task as creating it would (refused if invalid), then dry-run its pipeline."""
    definition = msgspec.convert(msgspec.to_builtins(data.task), TaskDefinition)
    async with backend.pool.acquire() as conn:
        tools = await known_tool_addresses(conn)
    now = datetime.now(UTC)
    prepared = prepare_definition(definition, now, tools, backend.shell_allow, backend.limits)
    return await dry_run(
        "dry-run",
        prepared.title,
        prepared,
        caller.principal.actor,
        ToolCatalog(backend.pool).find,
        data.event,
        SecretVault(backend.pool, None, reveal=False).for_tool,
        backend.limits,
    )
