"""Task commands decided purely: validate, then return the events (``now`` is an argument)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from domain.budgets import check_amount
from domain.debounce import check_debounce
from domain.errors import Refusal, RuleViolation
from domain.events import (
    Event,
    TaskCanceled,
    TaskCreated,
    TaskDefinition,
    TaskDeleted,
    TaskPaused,
    TaskResumed,
    TaskRunRequested,
    TaskSnoozed,
    TaskUpdated,
)
from domain.json_equality import same_json
from domain.limits import WorkLimits
from domain.pipeline import validate_payload
from domain.quiet_hours import check_windows
from domain.schedules import anchor_dtstart, compile_schedule, validate_timezone
from domain.schedules.once import GRACE
from domain.schedules.zones import MAX_INSTANT, SUPPORTED_RANGE, user_instant
from domain.templates import bare_expression, check_expression
from domain.workload import check_payload_work

TIMED_KINDS = frozenset({"cron", "rrule", "once"})
_TOPIC_PATTERN = re.compile(r"^[A-Za-z0-9_.:*?\-]{1,200}$")
_BARE_RRULE = re.compile(r"^\s*(RRULE:)?FREQ=", re.IGNORECASE)
MAX_SNOOZE_SECONDS = 31_536_000  # a year: the furthest a snooze moves an occurrence


class TaskRejected(RuleViolation):
    """A task command refused: invalid input, or a conflict with the task's state."""


@dataclass(frozen=True)
class TaskState:
    """What a decision needs to know about an existing task."""

    task_id: str
    definition: TaskDefinition
    status: str
    next_run_at: datetime | None


def prepare_definition(
    definition: TaskDefinition,
    now: datetime,
    tools: frozenset[str] | None = None,
    shell_allow: tuple[str, ...] | None = None,
    limits: WorkLimits | None = None,
) -> TaskDefinition:
    """Validate everything and fix a bare RRULE's anchor once, so its phase never drifts.

    ``tools`` is the catalog the pipeline's steps must come from (None: not checked);
    ``shell_allow`` the programs `shell.exec` steps may run (None: not checked);
    ``limits`` the work a run may do (the defaults when None), as far as params tell.
    """
    limits = limits or WorkLimits()
    validate_payload(definition.payload, tools, shell_allow, limits, now)
    check_payload_work(definition.payload, now, limits)
    check_amount(definition.budget_per_day, "budget_per_day")
    check_windows(definition.quiet_hours, "quiet_hours")
    zone = validate_timezone(definition.timezone)
    _check_expressions(definition)
    if definition.schedule_kind in ("event", "condition"):
        if not _TOPIC_PATTERN.match(definition.schedule_expr):
            raise TaskRejected("schedule_expr", "must be a topic or glob such as calendar.*")
        return definition
    if definition.schedule_kind == "once" and definition.dtstart is not None:
        raise TaskRejected("dtstart", "a once schedule fires at its own instant: leave dtstart out")
    bare_rrule = definition.schedule_kind == "rrule" and _BARE_RRULE.match(definition.schedule_expr)
    if bare_rrule and definition.dtstart is None:
        definition = msgspec.structs.replace(definition, dtstart=anchor_dtstart(now, zone))
    first_run(definition, now)  # compiles, so an invalid rule is refused here
    return definition


def _check_expressions(definition: TaskDefinition) -> None:
    """``filter`` and ``condition`` are valid JMESPath, and only where they mean something."""
    kind = definition.schedule_kind
    if definition.condition_cron is not None:
        raise TaskRejected(
            "condition_cron", "re-evaluating a condition on a schedule is not supported yet"
        )
    if definition.filter is not None:
        if kind not in ("event", "condition"):
            raise TaskRejected("filter", "only event and condition tasks take a filter")
        check_expression(bare_expression(definition.filter, "filter"), "filter")
    if kind == "condition":
        if definition.condition is None:
            raise TaskRejected("condition", "a condition task needs a condition")
        check_expression(bare_expression(definition.condition, "condition"), "condition")
    elif definition.condition is not None:
        raise TaskRejected("condition", "only condition tasks take a condition")
    try:
        check_debounce(definition)
    except RuleViolation as exc:
        raise TaskRejected(exc.field, exc.reason) from None


def first_run(definition: TaskDefinition, now: datetime) -> datetime | None:
    """The first occurrence after ``now`` (a one-shot time within the grace period counts)."""
    if definition.schedule_kind not in TIMED_KINDS:
        return None
    schedule = compile_schedule(
        definition.schedule_kind,
        definition.schedule_expr,
        definition.timezone,
        dtstart=definition.dtstart,
        now=now,
    )
    after = now - GRACE if definition.schedule_kind == "once" else now
    following = schedule.next_after(after)
    if following is None:
        raise TaskRejected("schedule_expr", "has no occurrence after now")
    return following


def decide_create(
    task_id: str,
    definition: TaskDefinition,
    now: datetime,
    tools: frozenset[str] | None = None,
    shell_allow: tuple[str, ...] | None = None,
    limits: WorkLimits | None = None,
) -> list[Event]:
    """A new task: validated, anchored, with its first run decided."""
    prepared = prepare_definition(definition, now, tools, shell_allow, limits)
    return [TaskCreated(task_id=task_id, definition=prepared, next_run_at=first_run(prepared, now))]


SCHEDULE_FIELDS = frozenset({"schedule_kind", "schedule_expr", "timezone", "dtstart"})


def decide_update(
    state: TaskState,
    changes: dict[str, object],
    now: datetime,
    tools: frozenset[str] | None = None,
    shell_allow: tuple[str, ...] | None = None,
    limits: WorkLimits | None = None,
) -> list[Event]:
    """Apply changed fields; a schedule change recomputes the next run."""
    _require_open(state)
    current = msgspec.to_builtins(state.definition)
    merged = {**current, **changes}
    new_kind = merged.get("schedule_kind") != "rrule" or state.definition.schedule_kind != "rrule"
    if (
        changes.keys() & {"schedule_kind", "schedule_expr"}
        and "dtstart" not in changes
        and new_kind
    ):
        merged.pop("dtstart", None)  # a new kind of rule gets a new anchor
    try:
        definition = msgspec.convert(merged, TaskDefinition)
    except msgspec.ValidationError as exc:
        raise TaskRejected("body", str(exc)) from None
    prepared = prepare_definition(definition, now, tools, shell_allow, limits)
    changed = tuple(sorted(k for k in changes if current.get(k) != changes[k]))
    if not changed:
        return []
    rescheduled = (
        bool(SCHEDULE_FIELDS & set(changed)) or prepared.dtstart != state.definition.dtstart
    )
    next_run_at = first_run(prepared, now) if rescheduled else state.next_run_at
    return [
        TaskUpdated(
            task_id=state.task_id, definition=prepared, changed=changed, next_run_at=next_run_at
        )
    ]


def definition_changes(stored: TaskDefinition, desired: TaskDefinition) -> dict[str, object]:
    """The fields of a whole new definition that really differ from the stored one.

    Used when a caller restates a task in full (POST with a known key, `ordinaut apply`):
    restating it unchanged must record nothing. A bare RRULE's anchor (``dtstart``) was fixed
    at creation; a restatement without one keeps it unless the rule itself changes.
    """
    old = _fields(stored)
    new = _fields(desired)
    # as JSON, the way the store keeps them: a float that only the store turned into an
    # integer (1e23) is no change, a boolean that became a number (true -> 1) is one
    changes = {name: value for name, value in new.items() if not same_json(old[name], value)}
    if desired.dtstart is None and not changes.keys() & {"schedule_kind", "schedule_expr"}:
        changes.pop("dtstart", None)
    return changes


def _fields(definition: TaskDefinition) -> dict[str, object]:
    """Every field as JSON-compatible values, defaults included."""
    return {
        f.name: msgspec.to_builtins(getattr(definition, f.name))
        for f in msgspec.structs.fields(definition)
    }


def decide_pause(state: TaskState) -> list[Event]:
    """Stop firing; pausing a paused task changes nothing."""
    _require_open(state)
    return [] if state.status == "paused" else [TaskPaused(task_id=state.task_id)]


def decide_resume(state: TaskState, now: datetime, catch_up: bool) -> list[Event]:
    """Fire again: from now on, or (catch_up) from the run that was due when paused."""
    _require_open(state)
    if state.status == "active":
        return []
    following = state.next_run_at if catch_up else first_run(state.definition, now)
    return [TaskResumed(task_id=state.task_id, next_run_at=following, catch_up=catch_up)]


def decide_snooze(
    state: TaskState, now: datetime, *, seconds: int | None, until: datetime | None
) -> list[Event]:
    """Move only the next occurrence: by ``seconds`` from when it was due, or to ``until``
    (without an offset: wall time in the task's zone), at most a year after it was due."""
    _require_open(state)
    if state.next_run_at is None:
        raise TaskRejected("task", "has no next occurrence to snooze", Refusal.CONFLICT)
    if (seconds is None) == (until is None):
        raise TaskRejected("body", "give exactly one of seconds or until")
    if until is not None:
        field, target = "until", _snooze_until(state, state.next_run_at, until)
    else:
        field, target = "seconds", _snooze_by(state.next_run_at, seconds or 0)
    if target <= now:
        raise TaskRejected(field, "must be in the future")
    return [TaskSnoozed(task_id=state.task_id, until=target)]


def _snooze_by(due: datetime, seconds: int) -> datetime:
    if not 1 <= seconds <= MAX_SNOOZE_SECONDS:
        raise TaskRejected("seconds", f"must be from 1 to {MAX_SNOOZE_SECONDS}")
    moved = timedelta(seconds=seconds)
    if due >= MAX_INSTANT - moved:  # a one-shot near the calendar's end
        raise TaskRejected("seconds", f"moves it past the supported range ({SUPPORTED_RANGE})")
    return due + moved


def _snooze_until(state: TaskState, due: datetime, until: datetime) -> datetime:
    # The same reading as the instants of schedules and previews, and the same bound as
    # ``seconds``: ``until`` may name any instant ``seconds`` could reach, and no further.
    target = user_instant(until, validate_timezone(state.definition.timezone), "until")
    if target - due > timedelta(seconds=MAX_SNOOZE_SECONDS):
        reason = f"must be at most {MAX_SNOOZE_SECONDS} seconds (a year) after the occurrence"
        raise TaskRejected("until", f"{reason} it moves ({due.isoformat()})")
    return target


def decide_run_now(state: TaskState, now: datetime, run_id: str) -> list[Event]:
    """A run now, beside the schedule (also for a paused task)."""
    _require_open(state)
    d = state.definition
    return [
        TaskRunRequested(
            task_id=state.task_id,
            run_id=run_id,
            run_at=now,
            priority=d.priority,
            concurrency_key=d.concurrency_key,
        )
    ]


def decide_cancel(state: TaskState) -> list[Event]:
    """Never fire again (terminal); cancelling twice changes nothing."""
    if state.status == "canceled":
        return []
    _require_open(state)
    return [TaskCanceled(task_id=state.task_id)]


def decide_delete(state: TaskState) -> list[Event]:
    """Hide the task from reads; its events stay for audit."""
    return [TaskDeleted(task_id=state.task_id)]


def _require_open(state: TaskState) -> None:
    if state.status in ("canceled", "completed"):
        raise TaskRejected("task", f"is {state.status}", Refusal.CONFLICT)
