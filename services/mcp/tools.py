"""The MCP tools: each one an operation the API also serves, with the same scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from domain.errors import RuleViolation
from services.api.operations import dry_runs, events, runs, schedules, tasks
from services.api.operations.context import Backend, Caller, Outcome
from services.api.operations.dry_runs import DryRunBody, DryRunOptions
from services.api.operations.events import PublishEvent
from services.api.operations.runs import Decision
from services.api.operations.schedules import SchedulePreview
from services.api.problems import ApiError, FieldError
from services.api.task_bodies import TaskBody, patch_changes
from services.api.tool_store import list_tools
from services.mcp import arguments as a
from services.mcp.texts import ERRORS, PIPELINE, SCHEDULES

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


def _task_result(verb: str, outcome: Outcome) -> Result:
    body = plain(outcome.body)
    return body, task_line(verb, body)


def _require(value: Any, field: str, reason: str) -> Any:
    if value is None:
        raise ApiError(422, "Invalid request", f"{field}: {reason}", [FieldError(field, reason)])
    return value


async def _create(caller: Caller, backend: Backend, args: TaskBody) -> Result:
    outcome = await tasks.create_task(caller, backend, args)
    return _task_result("Scheduled" if outcome.status == 201 else "Updated", outcome)


async def _update(caller: Caller, backend: Backend, args: a.UpdateTask) -> Result:
    if args.expected_version is not None:
        caller = Caller(**{**caller.__dict__, "if_match": str(args.expected_version)})
    changes = patch_changes(args.changes)
    return _task_result("Updated", await tasks.update_task(caller, backend, args.task_id, changes))


async def _list_tasks(caller: Caller, backend: Backend, args: a.ListTasks) -> Result:
    filters = {"status": args.status, "schedule_kind": args.schedule_kind, "created_by": None,
               "key": args.key, "title": args.q}  # fmt: skip
    page = plain(await tasks.find_tasks(caller, backend, filters, args.limit, args.cursor))
    lines = [task_line(f"{t['id']}:", t) for t in page["items"]]
    more = " (more: pass next_cursor)" if page["next_cursor"] else ""
    return page, "\n".join([f"{len(lines)} task(s){more}", *lines])


async def _get_task(caller: Caller, backend: Backend, args: a.TaskRef) -> Result:
    view = plain(await tasks.read_task(caller, backend, args.task_id))
    return view, task_line("Task", view)


_PREVIEW_FIELDS = {"schedule_kind": "kind", "schedule_expr": "expr"}


async def _preview(caller: Caller, backend: Backend, args: a.PreviewSchedule) -> Result:
    if args.task_id is not None:
        found = await tasks.task_occurrences(caller, backend, args.task_id, args.count)
        zone = plain(await tasks.read_task(caller, backend, args.task_id))["definition"]
        tz = zone.get("timezone", "UTC")
    else:
        preview = SchedulePreview(
            kind=_require(args.kind, "kind", "give kind and expr, or task_id"),
            expr=_require(args.expr, "expr", "give kind and expr, or task_id"),
            timezone=args.timezone, after=args.after, count=args.count, dtstart=args.dtstart,
        )  # fmt: skip
        try:
            found, tz = schedules.preview_schedule(preview).occurrences, args.timezone
        except RuleViolation as exc:  # the domain names a task's fields; name this tool's
            field = _PREVIEW_FIELDS.get(exc.field, exc.field)
            raise RuleViolation(field, exc.reason, exc.status) from None
    shown = ", ".join(_when(instant, tz) for instant in found[:5])
    return {"occurrences": found}, f"{len(found)} occurrence(s): {shown or 'none'}"


async def _run_now(caller: Caller, backend: Backend, args: a.RunNow) -> Result:
    if args.idempotency_key is not None:
        caller = Caller(**{**caller.__dict__, "idempotency_key": args.idempotency_key})
    body = plain((await tasks.run_task_now(caller, backend, args.task_id)).body)
    return body, f"Queued run {body['run_id']}"


def _state_change(verb: str, operation: Callable[..., Awaitable[Outcome]]) -> Run:
    async def run(caller: Caller, backend: Backend, args: Any) -> Result:
        extra: dict[str, Any] = (
            {"catch_up": args.catch_up} if isinstance(args, a.ResumeTask) else {}
        )
        if isinstance(args, a.SnoozeTask):
            extra = {"seconds": args.seconds, "until": args.until}
        return _task_result(verb, await operation(caller, backend, args.task_id, **extra))

    return run


async def _delete(caller: Caller, backend: Backend, args: a.TaskRef) -> Result:
    await tasks.delete_task(caller, backend, args.task_id)
    return {"deleted": args.task_id}, f"Deleted task {args.task_id} (its events stay)"


def _run_line(run: dict[str, Any]) -> str:
    steps = ", ".join(f"{s['id']}={s['status']}" for s in run["steps"])
    return f"Run {run['id']} is {run['status']}" + (f" (steps: {steps})" if steps else "")


async def _list_runs(caller: Caller, backend: Backend, args: a.ListRuns) -> Result:
    page = plain(
        await runs.find_runs(caller, backend, args.status, args.task_id, args.limit, args.cursor)
    )
    return page, "\n".join([f"{len(page['items'])} run(s)", *map(_run_line, page["items"])])


async def _get_run(caller: Caller, backend: Backend, args: a.RunRef) -> Result:
    run = plain(await runs.read_run(caller, backend, args.run_id))
    return run, _run_line(run)


async def _approve(caller: Caller, backend: Backend, args: a.ApproveRun) -> Result:
    decision = Decision(comment=args.comment, approved_items=args.approved_items)
    run = plain(await runs.decide_run(caller, backend, args.run_id, True, decision))
    return run, "Approved; " + _run_line(run)


async def _reject(caller: Caller, backend: Backend, args: a.RejectRun) -> Result:
    decision = Decision(comment=args.comment)
    run = plain(await runs.decide_run(caller, backend, args.run_id, False, decision))
    return run, "Rejected; " + _run_line(run)


async def _publish(caller: Caller, backend: Backend, args: PublishEvent) -> Result:
    body = plain(await events.publish_event(caller, backend, args))
    return body, f"Recorded event {body['id']}; fired {len(body['triggered_tasks'])} task(s)"


async def _list_tools(caller: Caller, backend: Backend, args: a.ListTools) -> Result:
    async with backend.pool.acquire() as conn:
        items = plain(await list_tools(conn))
    return {"items": items}, f"{len(items)} tools: " + ", ".join(t["address"] for t in items)


async def _dry_run(caller: Caller, backend: Backend, args: a.DryRunPipeline) -> Result:
    if (args.task_id is None) == (args.task is None):
        _require(None, "task_id", "give either task_id or task, not both")
    if args.task_id is not None:
        options = DryRunOptions(params=args.params, event=args.event)
        result = await dry_runs.dry_run_task(caller, backend, args.task_id, options)
    else:
        body = DryRunBody(task=_require(args.task, "task", "required"), event=args.event)
        result = await dry_runs.dry_run_new_task(caller, backend, body)
    shown = plain(result)
    return shown, "Dry run ok" if shown["ok"] else f"Dry run failed: {shown['error']}"


async def _history(caller: Caller, backend: Backend, args: a.GetHistory) -> Result:
    if (args.task_id is None) == (args.run_id is None):
        _require(None, "task_id", "give either task_id or run_id")
    needed = "tasks:read" if args.task_id is not None else "runs:read"
    if not caller.principal.allows(needed):
        raise ApiError(403, "Forbidden", f"this needs the {needed!r} scope")
    if args.task_id is not None:
        items = await tasks.task_history(caller, backend, args.task_id)
    else:
        items = await runs.run_history(caller, backend, _require(args.run_id, "run_id", "required"))
    shown = plain(items)
    return {"items": shown}, f"{len(shown)} event(s): " + ", ".join(e["type"] for e in shown)


_TASK = f"""{SCHEDULES}

{PIPELINE}"""

TOOLS: list[ToolSpec] = [
    ToolSpec(
        "create_task",
        "tasks:write",
        TaskBody,
        f"""\
Create a scheduled task, or update your task that has the same `key` (create-or-update: give \
a stable `key` to make repeating this call safe). Answers the task as stored, with its \
`id`, `version` and `next_run_at`. Scope: tasks:write.

{_TASK}

{ERRORS}""",
        _create,
    ),
    ToolSpec(
        "update_task",
        "tasks:write",
        a.UpdateTask,
        f"""\
Change some fields of a task (`changes` takes any fields of create_task); a schedule change \
recomputes the next run. `expected_version` refuses the change if the task moved on. \
Scope: tasks:write.

{SCHEDULES}

{ERRORS}""",
        _update,
    ),
    ToolSpec(
        "list_tasks",
        "tasks:read",
        a.ListTasks,
        f"""\
List your tasks (the admin sees everyone's), oldest first, filtered by status, schedule kind, \
key or text in the title. Pass `next_cursor` as `cursor` for the next page. Scope: tasks:read.

{ERRORS}""",
        _list_tasks,
        read_only=True,
    ),
    ToolSpec(
        "get_task",
        "tasks:read",
        a.TaskRef,
        f"""\
Read one task: its definition, status, version, next_run_at and last run. Scope: tasks:read.

{ERRORS}""",
        _get_task,
        read_only=True,
    ),
    ToolSpec(
        "preview_schedule",
        "tasks:read",
        a.PreviewSchedule,
        f"""\
The next `count` occurrences of a rule (give `kind`, `expr` and `timezone`; `after` defaults \
to now) or of an existing task (give `task_id`), without creating or changing anything. Use \
it to check a rule before create_task. Scope: tasks:read.

{SCHEDULES}

{ERRORS}""",
        _preview,
        read_only=True,
    ),
    ToolSpec(
        "run_task_now",
        "tasks:write",
        a.RunNow,
        f"""\
Queue a run of the task now, without disturbing its schedule. Answers the `run_id`: follow \
it with get_run. Scope: tasks:write.

{ERRORS}""",
        _run_now,
    ),
    ToolSpec(
        "pause_task",
        "tasks:write",
        a.TaskRef,
        f"""\
Stop the task firing until resume_task. Scope: tasks:write.

{ERRORS}""",
        _state_change("Paused", tasks.pause_task),
    ),
    ToolSpec(
        "resume_task",
        "tasks:write",
        a.ResumeTask,
        f"""\
Let a paused task fire again from now on; `catch_up: true` also runs what was missed while \
paused (per its misfire policy). Scope: tasks:write.

{ERRORS}""",
        _state_change("Resumed", tasks.resume_task),
    ),
    ToolSpec(
        "snooze_task",
        "tasks:write",
        a.SnoozeTask,
        f"""\
Move only the next occurrence: by `seconds` from its due time, or to `until` (ISO-8601 with \
an offset). Later occurrences stay as scheduled. Scope: tasks:write.

{ERRORS}""",
        _state_change("Snoozed", tasks.snooze_task),
    ),
    ToolSpec(
        "cancel_task",
        "tasks:write",
        a.TaskRef,
        f"""\
Cancel the task for good: it never fires again (it stays readable). Scope: tasks:write.

{ERRORS}""",
        _state_change("Canceled", tasks.cancel_task),
    ),
    ToolSpec(
        "delete_task",
        "tasks:write",
        a.TaskRef,
        f"""\
Hide the task from reads; its events stay for audit. Scope: tasks:write.

{ERRORS}""",
        _delete,
    ),
    ToolSpec(
        "list_runs",
        "runs:read",
        a.ListRuns,
        f"""\
List runs of your tasks, newest first, filtered by `status` and `task_id`. Pass `next` as \
`cursor` for the next page. Scope: runs:read.

{ERRORS}""",
        _list_runs,
        read_only=True,
    ),
    ToolSpec(
        "get_run",
        "runs:read",
        a.RunRef,
        f"""\
Read one run: status (queued, running, awaiting_approval, deferred, succeeded, dead, \
canceled, deduplicated), error, approval, and every step's rendered input, output or error. \
Scope: runs:read.

{ERRORS}""",
        _get_run,
        read_only=True,
    ),
    ToolSpec(
        "approve_run",
        "runs:approve",
        a.ApproveRun,
        f"""\
Approve the approval step a run waits at (status awaiting_approval); `approved_items` \
approves only those items. The run resumes. Scope: runs:approve.

{ERRORS}""",
        _approve,
    ),
    ToolSpec(
        "reject_run",
        "runs:approve",
        a.RejectRun,
        f"""\
Reject the approval step a run waits at; the run resumes and its next steps see \
`status: rejected`. Scope: runs:approve.

{ERRORS}""",
        _reject,
    ),
    ToolSpec(
        "publish_event",
        "events:publish",
        PublishEvent,
        f"""\
Record an external event (`topic` like "calendar.changed", a `payload` object) and queue a \
run of every event task it matches. A repeated `idempotency_key` records and fires nothing \
again. Answers the event id and the tasks it fired. Scope: events:publish.

{ERRORS}""",
        _publish,
    ),
    ToolSpec(
        "list_tools",
        "tasks:read",
        a.ListTools,
        f"""\
Every tool a pipeline step may `use`, with its input and output JSON Schemas and the scopes \
it needs. Scope: tasks:read.

{ERRORS}""",
        _list_tools,
        read_only=True,
    ),
    ToolSpec(
        "dry_run_pipeline",
        "tasks:read",
        a.DryRunPipeline,
        f"""\
Render and validate a pipeline with fake tool outputs; nothing is called or recorded. Give \
`task_id` (an existing task, optionally with other `params`) or `task` (as create_task takes \
it), and optionally the triggering `event`. Answers `ok`, the first `error`, and each \
step. Scope: tasks:read.

{PIPELINE}

{ERRORS}""",
        _dry_run,
        read_only=True,
    ),
    ToolSpec(
        "get_history",
        None,
        a.GetHistory,
        f"""\
Every event of a task (`task_id`, scope tasks:read) or of a run (`run_id`, scope \
runs:read), in order: what was decided, when, and by whom.

{ERRORS}""",
        _history,
        read_only=True,
    ),
]
