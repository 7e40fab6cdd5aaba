"""Request and response bodies of the task API (validated by msgspec before any decision)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from domain.quiet_hours import CLOCK_PATTERN
from domain.tasks import MAX_SNOOZE_SECONDS

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# What the `task` read model's status holds (projections/rules/task.py): a list filter on it
# takes only these.
TaskStatus = Literal["active", "paused", "canceled", "completed"]
Seconds = Annotated[int, msgspec.Meta(ge=0, le=31_536_000)]
Expression = Annotated[str, msgspec.Meta(min_length=1, max_length=2_000)]

# The domain checks the pattern (with its own message); the document states it.
Clock = Annotated[
    str, msgspec.Meta(min_length=5, max_length=8, extra_json_schema={"pattern": CLOCK_PATTERN})
]


class QuietHours(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A local-time window (``HH:MM`` or ``HH:MM:SS``) in which notifying steps wait."""

    start: Clock
    end: Clock


class TaskBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A task as an agent writes it (POST /tasks)."""

    title: Text
    schedule_kind: Literal["cron", "rrule", "once", "event", "condition"]
    schedule_expr: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "UTC"
    description: Annotated[str, msgspec.Meta(max_length=5_000)] | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    priority: Annotated[int, msgspec.Meta(ge=1, le=9)] = 5
    dedupe_key: Text | None = None
    dedupe_window_seconds: Seconds | None = None
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=100)] = 3
    backoff_strategy: Literal["exponential_jitter", "exponential", "linear", "fixed"] = (
        "exponential_jitter"
    )
    backoff_base_seconds: Annotated[float, msgspec.Meta(ge=0.1, le=86_400)] = 2.0
    backoff_max_seconds: Annotated[float, msgspec.Meta(ge=0.1, le=604_800)] = 3_600.0
    concurrency_key: Text | None = None
    max_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 1
    key: Text | None = None
    dtstart: datetime | None = None
    misfire_policy: Literal["run_once", "skip", "run_all"] = "run_once"
    misfire_grace_seconds: Seconds | None = None
    jitter_seconds: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 0
    metadata: dict[Text, Annotated[str, msgspec.Meta(max_length=1_000)]] = msgspec.field(
        default_factory=dict
    )
    filter: Expression | None = None
    condition: Expression | None = None
    condition_cron: Text | None = None
    budget_per_day: Annotated[float, msgspec.Meta(ge=0, le=1e12)] | None = None
    quiet_hours: Annotated[list[QuietHours], msgspec.Meta(max_length=20)] = msgspec.field(
        default_factory=list
    )
    # Event tasks: events within this many seconds of the first join its run (per key).
    debounce_seconds: Annotated[int, msgspec.Meta(ge=1, le=86_400)] | None = None
    debounce_key: Expression | None = None


# PATCH takes any subset of the same fields, with the same constraints.
TaskPatch = msgspec.defstruct(
    "TaskPatch",
    [(f.name, f.type | msgspec.UnsetType, msgspec.UNSET) for f in msgspec.structs.fields(TaskBody)],
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
)


def patch_changes(patch: Any) -> dict[str, Any]:
    """The fields a PATCH body sets, as JSON-compatible values."""
    return {
        f.name: msgspec.to_builtins(getattr(patch, f.name))
        for f in msgspec.structs.fields(patch)
        if getattr(patch, f.name) is not msgspec.UNSET
    }


class Snooze(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Move the next occurrence by ``seconds``, or to ``until`` (without an offset: wall time in
    the task's zone); either at most a year after it was due."""

    seconds: Annotated[int, msgspec.Meta(ge=1, le=MAX_SNOOZE_SECONDS)] | None = None
    until: datetime | None = None


class Resume(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Resume firing; ``catch_up`` runs what was missed while paused (per misfire policy)."""

    catch_up: bool = False


class RunStarted(msgspec.Struct, frozen=True):
    """The run a run_now request queued."""

    run_id: str


class LastRun(msgspec.Struct, frozen=True, kw_only=True):
    """The task's most recently queued run, in brief (GET /runs/{run_id} has the rest)."""

    run_id: str
    status: str
    trigger: str
    attempt: int
    scheduled_for: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class TaskView(msgspec.Struct, frozen=True, kw_only=True):
    """A task as read back: its definition plus state."""

    id: str
    status: str
    version: int
    next_run_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    definition: msgspec.Raw
    last_run: LastRun | None = None


class TaskPage(msgspec.Struct, frozen=True):
    """A page of tasks; pass ``next`` as ``cursor`` for the next page (null: the last page)."""

    items: list[TaskView]
    next: str | None
