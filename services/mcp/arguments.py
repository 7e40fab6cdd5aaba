"""The arguments of each MCP tool: msgspec structs, so the API's constraints hold verbatim."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from domain.tasks import MAX_SNOOZE_SECONDS
from services.application.paging import DEFAULT_LIMIT, MAX_LIMIT
from services.application.runs import RunStatusFilter
from services.application.task_bodies import TaskBody, TaskPatch

TaskId = Annotated[str, msgspec.Meta(min_length=1, max_length=100, description="The task's id")]
RunId = Annotated[str, msgspec.Meta(min_length=1, max_length=100, description="The run's id")]
Limit = Annotated[
    int, msgspec.Meta(ge=1, le=MAX_LIMIT, description=f"At most this many items (max {MAX_LIMIT})")
]
Cursor = Annotated[str, msgspec.Meta(max_length=500, description="`next` of the previous page")]
Comment = Annotated[str, msgspec.Meta(max_length=5_000, description="Why, for the record")]


class Args(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every tool's arguments: unknown fields are refused."""


class TaskRef(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    task_id: TaskId


class RunRef(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    run_id: RunId


class UpdateTask(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    task_id: TaskId
    changes: TaskPatch  # type: ignore[valid-type]  # generated from TaskBody
    expected_version: (
        Annotated[int, msgspec.Meta(ge=0, description="Refuse (409) if the task moved on")] | None
    ) = None


class ListTasks(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    status: Literal["active", "paused", "canceled", "completed"] | None = None
    schedule_kind: Literal["cron", "rrule", "once", "event", "condition"] | None = None
    key: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    q: Annotated[str, msgspec.Meta(max_length=200, description="Text in the title")] | None = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None


class PreviewSchedule(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    task_id: (
        Annotated[str, msgspec.Meta(max_length=100, description="Preview this task's runs")] | None
    ) = None
    schedule_kind: Literal["cron", "rrule", "once"] | None = None
    schedule_expr: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)] | None = None
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "UTC"
    after: datetime | None = None
    count: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    dtstart: datetime | None = None


class RunNow(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    task_id: TaskId
    idempotency_key: (
        Annotated[
            str, msgspec.Meta(min_length=1, max_length=200, description="Repeat-safe: same run")
        ]
        | None
    ) = None


class ResumeTask(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    task_id: TaskId
    catch_up: Annotated[bool, msgspec.Meta(description="Run what was missed while paused")] = False


class SnoozeTask(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    task_id: TaskId
    seconds: (
        Annotated[int, msgspec.Meta(ge=1, le=MAX_SNOOZE_SECONDS, description="From the due time")]
        | None
    ) = None
    until: (
        Annotated[
            datetime,
            msgspec.Meta(
                description="ISO-8601; without an offset, wall time in the task's zone;"
                " at most a year after the due time"
            ),
        ]
        | None
    ) = None


class ListRuns(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    status: RunStatusFilter | None = None
    task_id: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None


class ApproveRun(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    run_id: RunId
    comment: Comment | None = None
    approved_items: (
        Annotated[list[Any], msgspec.Meta(description="Approve only these items")] | None
    ) = None


class RejectRun(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    run_id: RunId
    comment: Comment | None = None


class RerunRun(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    run_id: RunId
    from_step: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=200,
            description="The step to run again; the steps before it keep their outputs",
        ),
    ]


class ListTools(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class DryRunPipeline(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    task_id: (
        Annotated[str, msgspec.Meta(max_length=100, description="An existing task to dry-run")]
        | None
    ) = None
    task: Annotated[TaskBody, msgspec.Meta(description="A task as create_task takes it")] | None = (
        None
    )
    params: dict[str, Any] | None = None
    event: dict[str, Any] | None = None


class GetHistory(Args, frozen=True, kw_only=True, forbid_unknown_fields=True):
    task_id: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    run_id: Annotated[str, msgspec.Meta(max_length=100)] | None = None


def input_schema(struct: type[Any]) -> dict[str, Any]:
    """The struct's JSON Schema with the struct itself at the top (MCP wants an object there)."""
    (ref,), components = msgspec.json.schema_components([struct], ref_template="#/$defs/{name}")
    name = ref["$ref"].rsplit("/", 1)[1]
    top = dict(components.pop(name))
    top.pop("title", None)
    top.pop("description", None)
    if components:
        top["$defs"] = components
    return top
