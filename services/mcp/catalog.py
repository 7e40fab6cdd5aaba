"""The MCP tool catalog: each tool's name, scope, arguments and what a language model reads."""

from __future__ import annotations

from services.application import tasks
from services.application.events import PublishEvent
from services.application.task_bodies import TaskBody
from services.mcp import arguments as a
from services.mcp import tools as h
from services.mcp.texts import ERRORS, PIPELINE, SCHEDULES
from services.mcp.tools import ToolSpec

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
        h.create,
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
        h.update,
    ),
    ToolSpec(
        "list_tasks",
        "tasks:read",
        a.ListTasks,
        f"""\
List your tasks (the admin sees everyone's), oldest first, filtered by status, schedule kind, \
key or text in the title. Pass `next` as `cursor` for the next page. Scope: tasks:read.

{ERRORS}""",
        h.list_tasks,
        read_only=True,
    ),
    ToolSpec(
        "get_task",
        "tasks:read",
        a.TaskRef,
        f"""\
Read one task: its definition, status, version, next_run_at and last run. Scope: tasks:read.

{ERRORS}""",
        h.get_task,
        read_only=True,
    ),
    ToolSpec(
        "preview_schedule",
        "tasks:read",
        a.PreviewSchedule,
        f"""\
The next `count` occurrences of a rule (give `schedule_kind`, `schedule_expr` and `timezone`, \
as on a task; `after` defaults \
to now) or of an existing task (give `task_id`), without creating or changing anything. Use \
it to check a rule before create_task. Scope: tasks:read.

{SCHEDULES}

{ERRORS}""",
        h.preview,
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
        h.run_now,
    ),
    ToolSpec(
        "pause_task",
        "tasks:write",
        a.TaskRef,
        f"""\
Stop the task firing until resume_task. Scope: tasks:write.

{ERRORS}""",
        h.state_change("Paused", tasks.pause_task),
    ),
    ToolSpec(
        "resume_task",
        "tasks:write",
        a.ResumeTask,
        f"""\
Let a paused task fire again from now on; `catch_up: true` also runs what was missed while \
paused (per its misfire policy). Scope: tasks:write.

{ERRORS}""",
        h.state_change("Resumed", tasks.resume_task),
    ),
    ToolSpec(
        "snooze_task",
        "tasks:write",
        a.SnoozeTask,
        f"""\
Move only the next occurrence: by `seconds` from its due time, or to `until` (ISO-8601; \
without an offset, wall time in the task's zone); either at most a year after its due time. \
Later occurrences stay as scheduled. Scope: tasks:write.

{ERRORS}""",
        h.state_change("Snoozed", tasks.snooze_task),
    ),
    ToolSpec(
        "cancel_task",
        "tasks:write",
        a.TaskRef,
        f"""\
Cancel the task for good: it never fires again (it stays readable). Scope: tasks:write.

{ERRORS}""",
        h.state_change("Canceled", tasks.cancel_task),
    ),
    ToolSpec(
        "delete_task",
        "tasks:write",
        a.TaskRef,
        f"""\
Hide the task from reads; its events stay for audit. Scope: tasks:write.

{ERRORS}""",
        h.delete,
    ),
    ToolSpec(
        "list_runs",
        "runs:read",
        a.ListRuns,
        f"""\
List runs of your tasks, newest first, filtered by `status` and `task_id`. Pass `next` as \
`cursor` for the next page. Scope: runs:read.

{ERRORS}""",
        h.list_runs,
        read_only=True,
    ),
    ToolSpec(
        "get_run",
        "runs:read",
        a.RunRef,
        f"""\
Read one run: status (queued, running, awaiting_approval, waiting, deferred, succeeded, \
dead, canceled, deduplicated), error, approval, `wait` (what a waiting run waits for and \
until when), `rerun_of`/`reruns`, and every step's rendered input, output or error. \
Scope: runs:read.

{ERRORS}""",
        h.get_run,
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
        h.approve,
    ),
    ToolSpec(
        "reject_run",
        "runs:approve",
        a.RejectRun,
        f"""\
Reject the approval step a run waits at; the run resumes and its next steps see \
`status: rejected`. Scope: runs:approve.

{ERRORS}""",
        h.reject,
    ),
    ToolSpec(
        "rerun_run",
        "tasks:write",
        a.RerunRun,
        f"""\
Start a new run of a finished run's task from `from_step`: that step and the ones after it \
run again; the steps before it keep the original run's outputs (their tools are not called \
again). The new run names the original (`rerun_of`). Refused (409) if the pipeline changed \
before `from_step` or a kept step did not succeed; 422 for a step the pipeline lacks. \
Scope: tasks:write.

{ERRORS}""",
        h.rerun,
    ),
    ToolSpec(
        "publish_event",
        "events:publish",
        PublishEvent,
        f"""\
Record an external event (`topic` like "calendar.changed", a `payload` object), queue a \
run of every event task it matches and resume the runs waiting for it. A repeated \
`idempotency_key` records and fires nothing again. Answers the event id, the tasks it fired \
and the runs it resumed. Scope: events:publish.

{ERRORS}""",
        h.publish,
    ),
    ToolSpec(
        "list_tools",
        "tasks:read",
        a.ListTools,
        f"""\
Every tool a pipeline step may `use`, with its input and output JSON Schemas and the scopes \
it needs. Scope: tasks:read.

{ERRORS}""",
        h.list_catalog,
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
        h.dry_run,
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
        h.history,
        read_only=True,
    ),
]
