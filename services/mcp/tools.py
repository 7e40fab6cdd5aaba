"""MCP tool handlers: arguments in, a shared operation called, (structured result, summary) out."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from services.application import dry_runs, events, reruns, runs, schedules, tasks
from services.application.context import Answer, Backend, Caller, OperationResult
from services.application.dry_runs import DryRunBody, DryRunOptions
from services.application.errors import Forbidden, invalid
from services.application.events import PublishEvent
from services.application.runs import Decision
from services.application.schedules import SchedulePreview
from services.application.task_bodies import TaskBody, patch_changes
from services.application.tool_store import list_tools
from services.mcp import arguments as a

Result = tuple[Any, str]
Run = Callable[[Caller, Backend, Any], Awaitable[Result]]
_definition = msgspec.json.Decoder(dict[str, Any])


@dataclass(frozen=True)
class ToolSpec:
    """A tool: its name, the scope it needs, its arguments, what a model reads, what it does."""

    name: str
    scope: str | None  # None: the tool checks (it depends on the arguments)
    arguments: type[Any]
    description: str
    run: Run
    read_only: bool = False


def plain(value: Any) -> Any:
    """An operation's answer as plain JSON values (the API's response body)."""
    if isinstance(value, msgspec.Raw):
        return msgspec.json.decode(value)
    return msgspec.json.decode(msgspec.json.encode(value))


def _when(instant: str | None, zone: str) -> str:
    if instant is None:
        return "none"
    local = datetime.fromisoformat(instant).astimezone(ZoneInfo(zone))
    return local.strftime("%a %Y-%m-%d %H:%M %Z")


def task_line(verb: str, task: dict[str, Any]) -> str:
    """'Scheduled 'Morning briefing'; next run Mon 2026-11-23 08:30 EET'."""
    definition = task["definition"]
    next_run = _when(task["next_run_at"], definition.get("timezone", "UTC"))
    return f"{verb} {definition['title']!r} ({task['status']}); next run {next_run}"


def _task_result(verb: str, outcome: OperationResult) -> Result:
    body = plain(outcome.body)
    return body, task_line(verb, body)


def _require(value: Any, field: str, reason: str) -> Any:
    if value is None:
        raise invalid(field, reason)
    return value


def _one_of(first: str, first_value: Any, second: str, second_value: Any) -> None:
    """Refuse unless exactly one of two alternatives was given, saying which way it is wrong."""
    if first_value is None and second_value is None:
        raise invalid(first, f"missing: give {first} or {second}")
    if first_value is not None and second_value is not None:
        raise invalid(first, f"give {first} or {second}, not both")


async def create(caller: Caller, backend: Backend, args: TaskBody) -> Result:
    outcome = await tasks.create_task(caller, backend, args)
    return _task_result("Scheduled" if outcome.answer is Answer.CREATED else "Updated", outcome)


async def update(caller: Caller, backend: Backend, args: a.UpdateTask) -> Result:
    if args.expected_version is not None:
        caller = dataclasses.replace(caller, if_match=str(args.expected_version))
    changes = patch_changes(args.changes)
    return _task_result("Updated", await tasks.update_task(caller, backend, args.task_id, changes))


async def list_tasks(caller: Caller, backend: Backend, args: a.ListTasks) -> Result:
    filters = {
        "status": args.status,
        "schedule_kind": args.schedule_kind,
        "created_by": None,
        "key": args.key,
        "title": args.q,
    }
    page = plain(await tasks.find_tasks(caller, backend, filters, args.limit, args.cursor))
    lines = [task_line(f"{t['id']}:", t) for t in page["items"]]
    more = " (more: pass next as cursor)" if page["next"] else ""
    return page, "\n".join([f"{len(lines)} task(s){more}", *lines])


async def get_task(caller: Caller, backend: Backend, args: a.TaskRef) -> Result:
    view = plain(await tasks.read_task(caller, backend, args.task_id))
    return view, task_line("Task", view)


async def preview(caller: Caller, backend: Backend, args: a.PreviewSchedule) -> Result:
    if args.task_id is not None:
        found = await tasks.task_occurrences(caller, backend, args.task_id, args.count)
        zone = plain(await tasks.read_task(caller, backend, args.task_id))["definition"]
        tz = zone.get("timezone", "UTC")
    else:
        needed = "give schedule_kind and schedule_expr, or task_id"
        preview = SchedulePreview(
            schedule_kind=_require(args.schedule_kind, "schedule_kind", needed),
            schedule_expr=_require(args.schedule_expr, "schedule_expr", needed),
            timezone=args.timezone,
            after=args.after,
            count=args.count,
            dtstart=args.dtstart,
        )
        found, tz = schedules.preview_schedule(preview).occurrences, args.timezone
    shown = ", ".join(_when(instant, tz) for instant in found[:5])
    return {"occurrences": found}, f"{len(found)} occurrence(s): {shown or 'none'}"


async def run_now(caller: Caller, backend: Backend, args: a.RunNow) -> Result:
    if args.idempotency_key is not None:
        caller = dataclasses.replace(caller, idempotency_key=args.idempotency_key)
    body = plain((await tasks.run_task_now(caller, backend, args.task_id)).body)
    return body, f"Queued run {body['run_id']}"


def state_change(verb: str, operation: Callable[..., Awaitable[OperationResult]]) -> Run:
    async def run(caller: Caller, backend: Backend, args: Any) -> Result:
        extra: dict[str, Any] = (
            {"catch_up": args.catch_up} if isinstance(args, a.ResumeTask) else {}
        )
        if isinstance(args, a.SnoozeTask):
            extra = {"seconds": args.seconds, "until": args.until}
        return _task_result(verb, await operation(caller, backend, args.task_id, **extra))

    return run


async def delete(caller: Caller, backend: Backend, args: a.TaskRef) -> Result:
    await tasks.delete_task(caller, backend, args.task_id)
    return {"deleted": args.task_id}, f"Deleted task {args.task_id} (its events stay)"


def _run_line(run: dict[str, Any]) -> str:
    steps = ", ".join(f"{s['id']}={s['status']}" for s in run["steps"])
    return f"Run {run['id']} is {run['status']}" + (f" (steps: {steps})" if steps else "")


async def list_runs(caller: Caller, backend: Backend, args: a.ListRuns) -> Result:
    page = plain(
        await runs.find_runs(caller, backend, args.status, args.task_id, args.limit, args.cursor)
    )
    return page, "\n".join([f"{len(page['items'])} run(s)", *map(_run_line, page["items"])])


async def get_run(caller: Caller, backend: Backend, args: a.RunRef) -> Result:
    run = plain(await runs.read_run(caller, backend, args.run_id))
    return run, _run_line(run)


async def approve(caller: Caller, backend: Backend, args: a.ApproveRun) -> Result:
    decision = Decision(comment=args.comment, approved_items=args.approved_items)
    run = plain(await runs.decide_run(caller, backend, args.run_id, True, decision))
    return run, "Approved; " + _run_line(run)


async def reject(caller: Caller, backend: Backend, args: a.RejectRun) -> Result:
    decision = Decision(comment=args.comment)
    run = plain(await runs.decide_run(caller, backend, args.run_id, False, decision))
    return run, "Rejected; " + _run_line(run)


async def rerun(caller: Caller, backend: Backend, args: a.RerunRun) -> Result:
    body = reruns.Rerun(from_step=args.from_step)
    run = plain(await reruns.rerun(caller, backend, args.run_id, body))
    return run, f"Re-run of {args.run_id} from {args.from_step!r}; " + _run_line(run)


async def publish(caller: Caller, backend: Backend, args: PublishEvent) -> Result:
    body = plain(await events.publish_event(caller, backend, args))
    return body, f"Recorded event {body['id']}; fired {len(body['triggered_tasks'])} task(s)"


async def list_catalog(caller: Caller, backend: Backend, args: a.ListTools) -> Result:
    async with backend.pool.acquire() as conn:
        items = plain(await list_tools(conn))
    return {"items": items}, f"{len(items)} tools: " + ", ".join(t["address"] for t in items)


async def dry_run(caller: Caller, backend: Backend, args: a.DryRunPipeline) -> Result:
    _one_of("task_id", args.task_id, "task", args.task)
    if args.task_id is not None:
        options = DryRunOptions(params=args.params, event=args.event)
        result = await dry_runs.dry_run_task(caller, backend, args.task_id, options)
    else:
        body = DryRunBody(task=_require(args.task, "task", "required"), event=args.event)
        result = await dry_runs.dry_run_new_task(caller, backend, body)
    shown = plain(result)
    return shown, "Dry run ok" if shown["ok"] else f"Dry run failed: {shown['error']}"


async def history(caller: Caller, backend: Backend, args: a.GetHistory) -> Result:
    _one_of("task_id", args.task_id, "run_id", args.run_id)
    needed = "tasks:read" if args.task_id is not None else "runs:read"
    if not caller.principal.allows(needed):
        raise Forbidden(f"this needs the {needed!r} scope")
    if args.task_id is not None:
        items = await tasks.task_history(caller, backend, args.task_id)
    else:
        items = await runs.run_history(caller, backend, _require(args.run_id, "run_id", "required"))
    shown = plain(items)
    return {"items": shown}, f"{len(shown)} event(s): " + ", ".join(e["type"] for e in shown)
