"""A run's rules: how fired occurrences become runs, and what a failed attempt leads to."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from domain.errors import Refusal, RuleViolation
from domain.events import (
    ApprovalGranted,
    ApprovalRejected,
    BackoffStrategy,
    Event,
    RunAttemptFailed,
    RunCanceled,
    RunCancelRequested,
    RunDead,
    RunQueued,
    TaskDefinition,
    TaskDue,
    TaskRunRequested,
)

RunStatus = Literal[
    "queued",
    "running",
    "awaiting_approval",
    "waiting",
    "deferred",
    "succeeded",
    "dead",
    "canceled",
    "deduplicated",
]
FINISHED: frozenset[str] = frozenset({"succeeded", "dead", "canceled", "deduplicated"})


def queue_runs(
    task_events: Sequence[Event], definition: TaskDefinition, owner: str
) -> list[RunQueued]:
    """A ``run.queued`` for every run the task's events fired (by schedule or run_now)."""
    runs: list[RunQueued] = []
    for event in task_events:
        if isinstance(event, TaskDue):
            runs.append(
                _queued(
                    definition,
                    owner,
                    event.task_id,
                    event.run_id,
                    event.scheduled_for,
                    event.run_at,
                    "schedule",
                )
            )
        elif isinstance(event, TaskRunRequested):
            runs.append(
                _queued(
                    definition,
                    owner,
                    event.task_id,
                    event.run_id,
                    event.run_at,
                    event.run_at,
                    "run_now",
                )
            )
    return runs


def _queued(
    d: TaskDefinition,
    owner: str,
    task_id: str,
    run_id: str,
    scheduled_for: datetime,
    run_at: datetime,
    trigger: Literal["schedule", "run_now"],
) -> RunQueued:
    return RunQueued(
        run_id=run_id,
        task_id=task_id,
        owner=owner,
        scheduled_for=scheduled_for,
        run_at=run_at,
        trigger=trigger,
        priority=d.priority,
        concurrency_key=d.concurrency_key,
        max_concurrency=d.max_concurrency,
        dedupe_key=d.dedupe_key,
        dedupe_window_seconds=d.dedupe_window_seconds,
    )


def backoff_seconds(
    strategy: BackoffStrategy,
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: random.Random | None = None,
) -> float:
    """The wait after failed attempt number ``attempt`` (1 = the first attempt failed).

    ``exponential_jitter`` is "full jitter": uniform between 0 and the capped exponential,
    which spreads a herd of failing runs instead of retrying them in lock step.
    """
    exponential = min(cap, base * 2.0 ** min(attempt - 1, 62))
    match strategy:
        case "exponential_jitter":
            return (rng or random.Random()).uniform(0.0, exponential)  # noqa: S311 - not crypto
        case "exponential":
            return exponential
        case "linear":
            return min(cap, base * attempt)
        case "fixed":
            return min(cap, base)


@dataclass(frozen=True)
class Failure:
    """What went wrong in an attempt, and whether trying again could help."""

    error: str
    retryable: bool = True


def decide_failure(
    run_id: str,
    attempt: int,
    failure: Failure,
    definition: TaskDefinition,
    now: datetime,
    rng: random.Random | None = None,
) -> RunAttemptFailed | RunDead:
    """Retry later (new due work at now + backoff), or dead-letter once retries are spent.

    ``max_retries`` counts retries, so a run is attempted at most max_retries + 1 times.
    """
    if not failure.retryable or attempt > definition.max_retries:
        return RunDead(run_id=run_id, attempt=attempt, error=failure.error)
    delay = backoff_seconds(
        definition.backoff_strategy,
        attempt,
        base=definition.backoff_base_seconds,
        cap=definition.backoff_max_seconds,
        rng=rng,
    )
    return RunAttemptFailed(
        run_id=run_id,
        attempt=attempt,
        error=failure.error,
        retry_at=now + timedelta(seconds=delay),
    )


def retry_dead(queued: RunQueued, attempt: int, now: datetime) -> RunQueued:
    """An operator's retry of a dead run: one more attempt, due now."""
    return RunQueued(
        run_id=queued.run_id,
        task_id=queued.task_id,
        owner=queued.owner,
        scheduled_for=queued.scheduled_for,
        run_at=now,
        attempt=attempt + 1,
        trigger="retry",
        priority=queued.priority,
        concurrency_key=queued.concurrency_key,
        max_concurrency=queued.max_concurrency,
        event=queued.event,
    )


def step_idempotency_key(run_id: str, step_path: str, declared: Any) -> str:
    """The key a tool sees for a step: the step's own (rendered) key, else run and step.

    Stable across attempts and workers, so a tool that honours it acts once per step.
    """
    if isinstance(declared, str) and declared:
        return declared
    return f"{run_id}:{step_path}"


class RunConflict(RuleViolation):
    """A run command that does not fit the run's state (a conflict)."""

    def __init__(self, reason: str) -> None:
        super().__init__("status", reason, Refusal.CONFLICT)


def decide_cancel(run_id: str, status: str, cancel_requested: bool) -> list[Event]:
    """Queued or parked: canceled now. Running: stop at the next step boundary."""
    if status in FINISHED:
        raise RunConflict(f"the run is already {status}")
    if status == "running":
        return [] if cancel_requested else [RunCancelRequested(run_id=run_id)]
    return [RunCanceled(run_id=run_id, reason="canceled on request")]


def ended_with_task(run_id: str, *, deleted: bool) -> RunCanceled:
    """A run that has not finished when its task is canceled or deleted ends with the task
    (settled when it is leased, or at once if it is parked or about to park)."""
    reason = "the task was deleted" if deleted else "the task was canceled"
    return RunCanceled(run_id=run_id, reason=reason)


def decide_retry(status: str, queued: RunQueued, attempt: int, now: datetime) -> list[Event]:
    """Revive a dead run: one more attempt, due now, skipping the steps that succeeded."""
    if status != "dead":
        raise RunConflict(f"only a dead run can be retried; this one is {status}")
    return [retry_dead(queued, attempt, now)]


def decide_approval(
    run_id: str,
    status: str,
    approval: dict[str, Any] | None,
    *,
    approve: bool,
    comment: str | None,
    approved_items: Any = None,
) -> list[Event]:
    """Approve (all items unless some are named) or reject the step the run is parked at."""
    if status != "awaiting_approval" or approval is None:
        raise RunConflict(f"the run is not waiting for an approval; it is {status}")
    step_id = str(approval.get("step_id", ""))
    if not approve:
        return [ApprovalRejected(run_id=run_id, step_id=step_id, comment=comment)]
    proposed = approval.get("data")
    items = proposed if approved_items is None else _picked(proposed, approved_items)
    return [ApprovalGranted(run_id=run_id, step_id=step_id, comment=comment, approved_items=items)]


def _picked(proposed: Any, approved_items: Any) -> list[Any]:
    """The items an approver picked, each one of the proposed list's (as many times at most as
    it was proposed). An approver picks among what the run proposed; approving anything else
    would let whoever holds runs:approve make the run act on data it never produced, so with
    data that is not a list there is nothing to pick from."""
    if not isinstance(proposed, list):
        raise RuleViolation(
            "approved_items",
            "the approval's data is not a list of items to pick from: approve it whole",
        )
    if not isinstance(approved_items, list):
        raise RuleViolation("approved_items", "must be a list of the approval's data items")
    # Compared as canonical JSON: in Python 1 == 1.0 == True, in the run's data they differ.
    left: dict[str, int] = {}
    for item in proposed:
        left[_canonical(item)] = left.get(_canonical(item), 0) + 1
    for item in approved_items:
        key = _canonical(item)
        if not left.get(key):
            raise RuleViolation("approved_items", "must be items of the approval's data")
        left[key] -= 1
    return approved_items


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
