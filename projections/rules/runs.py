"""What each event does to its run's row (the `runs` table): status, attempts, every step."""

from __future__ import annotations

from typing import Any

from domain.envelope import Envelope
from domain.events import (
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    RunAttemptFailed,
    RunCanceled,
    RunDead,
    RunDebounced,
    RunDeduplicated,
    RunDeferred,
    RunQueued,
    RunRerunRequested,
    RunResumed,
    RunStarted,
    RunStepFailed,
    RunStepSkipped,
    RunStepSucceeded,
    RunWaiting,
    RunWaitTimedOut,
    run_stream,
)
from domain.ownership import scoped_key
from projections.rules.row import Model, Row, Rule, plain, updated

TABLE = "runs"
KEY = "run_id"
COLUMNS = (
    "run_id",
    "task_id",
    "owner",
    "status",
    "trigger",
    "attempt",
    "priority",
    "scheduled_for",
    "run_at",
    "queued_at",
    "started_at",
    "finished_at",
    "worker",
    "error",
    "dedupe_key",
    "concurrency_key",
    "cancel_requested",
    "queued",
    "steps",
    "approval",
    "version",
    "wait",
    "rerun_of",
    "reruns",
    "debounce_key",
)
# jsonb columns the rules change in part, so they hold JSON values (as read back) in rows.
STRUCTURED = frozenset({"queued", "steps", "approval", "wait", "reruns"})


def key_of(envelope: Envelope) -> str:
    """The run an event changes."""
    return str(envelope.event.run_id)  # type: ignore[union-attr]


def _versioned(row: Row | None, envelope: Envelope, **columns: Any) -> Row | None:
    return updated(row, version=envelope.version, **columns)


def _with_step(row: Row, step_id: str, step: dict[str, Any]) -> dict[str, Any]:
    """The run's steps with ``step_id`` replaced by ``step``."""
    return {**row["steps"], step_id: plain(step)}


def _queued(row: Row | None, envelope: Envelope) -> Row | None:
    """A new run, or one queued again (its attempt, due time and trigger replaced)."""
    assert isinstance(envelope.event, RunQueued)
    e = envelope.event
    if row is not None:
        return _versioned(
            row,
            envelope,
            status="queued",
            trigger=e.trigger,
            attempt=e.attempt,
            run_at=e.run_at,
            finished_at=None,
            cancel_requested=False,
        )
    return {
        "run_id": e.run_id,
        "task_id": e.task_id,
        "owner": e.owner,
        "status": "queued",
        "trigger": e.trigger,
        "attempt": e.attempt,
        "priority": e.priority,
        "scheduled_for": e.scheduled_for,
        "run_at": e.run_at,
        "queued_at": envelope.recorded_at,
        "started_at": None,
        "finished_at": None,
        "worker": None,
        "error": None,
        "dedupe_key": scoped_key(e.owner, e.dedupe_key),
        "concurrency_key": scoped_key(e.owner, e.concurrency_key),
        "cancel_requested": False,
        "queued": plain(e),
        "steps": {},
        "approval": None,
        "version": envelope.version,
        "wait": None,
        "rerun_of": e.rerun_of,
        "reruns": [],
        "debounce_key": scoped_key(e.owner, e.debounce_key),
    }


def _started(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, RunStarted)
    e = envelope.event
    if row is None:
        return None
    started_at = row["started_at"] if row["started_at"] is not None else envelope.recorded_at
    return _versioned(
        row, envelope, status="running", attempt=e.attempt, worker=e.worker, started_at=started_at
    )


def _step_succeeded(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, RunStepSucceeded)
    e = envelope.event
    step: dict[str, Any] = {
        "status": "succeeded",
        "tool": e.tool,
        "input": e.input,
        "output": e.output,
        "duration_ms": e.duration_ms,
        "attempt": e.attempt,
        "at": envelope.recorded_at,
    }
    if e.cost:
        step["cost"] = e.cost
    if e.reused_from:
        step["reused_from"] = e.reused_from
    return _step(row, envelope, e.step_id, step)


def _step_failed(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, RunStepFailed)
    e = envelope.event
    step = {
        "status": "failed",
        "tool": e.tool,
        "input": e.input,
        "error": e.error,
        "duration_ms": e.duration_ms,
        "attempt": e.attempt,
        "continued": e.continued,
        "at": envelope.recorded_at,
    }
    return _step(row, envelope, e.step_id, step)


def _step_skipped(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, RunStepSkipped)
    e = envelope.event
    step = {
        "status": "skipped",
        "condition": e.condition,
        "attempt": e.attempt,
        "at": envelope.recorded_at,
    }
    return _step(row, envelope, e.step_id, step)


def _step(row: Row | None, envelope: Envelope, step_id: str, step: dict[str, Any]) -> Row | None:
    if row is None:
        return None
    return _versioned(row, envelope, steps=_with_step(row, step_id, step))


# The error of an earlier attempt no longer describes a run that went on to succeed.
def _succeeded(row: Row | None, envelope: Envelope) -> Row | None:
    return _versioned(
        row, envelope, status="succeeded", error=None, finished_at=envelope.recorded_at
    )


def _finished(row: Row | None, envelope: Envelope, status: str, error: str | None) -> Row | None:
    """Ended for good; an event that gives no reason keeps the last error."""
    if row is None:
        return None
    return _versioned(
        row,
        envelope,
        status=status,
        error=row["error"] if error is None else error,
        finished_at=envelope.recorded_at,
    )


def _dead(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, RunDead)
    return _finished(row, envelope, "dead", envelope.event.error)


def _canceled(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, RunCanceled)
    return _finished(row, envelope, "canceled", envelope.event.reason)


def _deduplicated(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, RunDeduplicated)
    e = envelope.event
    reason = f"duplicate of run {e.duplicate_of} (dedupe key {e.dedupe_key!r})"
    return _finished(row, envelope, "deduplicated", reason)


def _attempt_failed(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, RunAttemptFailed)
    e = envelope.event
    return _versioned(
        row,
        envelope,
        status="queued",
        attempt=e.attempt + 1,
        error=e.error,
        run_at=e.retry_at,
        worker=None,
    )


# Quiet hours: not running, due again at ``until`` (kept in run_at, as for a retry).
def _deferred(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, RunDeferred)
    return _versioned(row, envelope, status="deferred", run_at=envelope.event.until, worker=None)


def _cancel_requested(row: Row | None, envelope: Envelope) -> Row | None:
    return _versioned(row, envelope, cancel_requested=True)


def _approval_requested(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, ApprovalRequested)
    e, at = envelope.event, envelope.recorded_at
    if row is None:
        return None
    approval = {
        "step_id": e.step_id,
        "message": e.message,
        "data": e.data,
        "expires_at": e.expires_at,
        "on_timeout": e.on_timeout,
        "status": "pending",
        "requested_at": at,
    }
    step = {
        "status": "waiting",
        "tool": "orchestrator.request_approval",
        "input": {"message": e.message, "data": e.data},
        "at": at,
    }
    return _versioned(
        row,
        envelope,
        status="awaiting_approval",
        approval=plain(approval),
        worker=None,
        steps=_with_step(row, e.step_id, step),
    )


def _decided(row: Row | None, envelope: Envelope) -> Row | None:
    """Granted or rejected: queued again, the decision added to the approval and its step."""
    e = envelope.event
    assert isinstance(e, ApprovalGranted | ApprovalRejected)
    if row is None:
        return None
    items = e.approved_items if isinstance(e, ApprovalGranted) else []
    by, at = envelope.meta.actor, envelope.recorded_at
    status = "approved" if isinstance(e, ApprovalGranted) else "rejected"
    output = {
        "status": status,
        "approved_items": items,
        "comment": e.comment,
        "by": by,
        "expired": e.expired,
    }
    decision = {
        "status": status,
        "comment": e.comment,
        "by": by,
        "approved_items": items,
        "decided_at": at,
        "expired": e.expired,
    }
    step = {
        "status": "succeeded",
        "tool": "orchestrator.request_approval",
        "output": output,
        "at": at,
    }
    return _resumed_step(row, envelope, "approval", decision, step)


def _resumed_step(
    row: Row, envelope: Envelope, column: str, ended: dict[str, Any], step: dict[str, Any]
) -> Row | None:
    """Queued again now: ``ended`` added to the approval or wait in ``column``, and ``step``
    to the step it names."""
    parked = row[column] or {}
    step_id = parked.get("step_id")
    if step_id is None:  # as jsonb_build_object refuses a NULL key
        raise ValueError(f"run {row['run_id']} has no {column} step to resume")
    steps = {**row["steps"], step_id: {**row["steps"].get(step_id, {}), **plain(step)}}
    return _versioned(
        row,
        envelope,
        status="queued",
        run_at=envelope.recorded_at,
        steps=steps,
        **{column: {**parked, **plain(ended)}},
    )


# Waits: parked without a worker; resumed or timed out, queued again with the step's outcome.
def _waiting(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, RunWaiting)
    e, at = envelope.event, envelope.recorded_at
    if row is None:
        return None
    wait = {
        "step_id": e.step_id,
        "kind": e.kind,
        "topic": e.topic,
        "filter": e.filter,
        "until": e.until,
        "on_timeout": e.on_timeout,
        "default": e.default,
        "since_position": e.since_position,
        "scope": e.scope,
        "consumed": e.consumed,
        "status": "waiting",
        "waiting_since": at,
    }
    step = {"status": "waiting", "tool": e.tool, "input": e.input, "attempt": e.attempt, "at": at}
    return _versioned(
        row,
        envelope,
        status="waiting",
        wait=plain(wait),
        worker=None,
        steps=_with_step(row, e.step_id, step),
    )


def _wait_ended(row: Row | None, envelope: Envelope) -> Row | None:
    e, at = envelope.event, envelope.recorded_at
    assert isinstance(e, RunResumed | RunWaitTimedOut)
    if row is None:
        return None
    if isinstance(e, RunResumed):
        ended: dict[str, Any] = {
            "status": "resumed" if e.reason == "event" else "woke",
            "ended_at": at,
        }
        step: dict[str, Any] = {"status": "succeeded", "output": e.output, "at": at}
    else:
        ended = {"status": "timed_out", "ended_at": at}
        step = {"status": "timed_out", "at": at}
        if not e.failed:
            step = {"status": "succeeded", "output": e.output, "timed_out": True, "at": at}
    return _resumed_step(row, envelope, "wait", ended, step)


def _rerun_requested(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, RunRerunRequested)
    if row is None:
        return None
    return _versioned(row, envelope, reruns=[*row["reruns"], envelope.event.rerun_id])


def _debounced(row: Row | None, envelope: Envelope) -> Row | None:
    assert isinstance(envelope.event, RunDebounced)
    if row is None:
        return None
    queued = {**row["queued"], "event": plain(envelope.event.event)}
    return _versioned(row, envelope, queued=queued)


RULES: dict[str, Rule] = {
    "run.queued": _queued,
    "run.started": _started,
    "run.step_succeeded": _step_succeeded,
    "run.step_failed": _step_failed,
    "run.step_skipped": _step_skipped,
    "run.succeeded": _succeeded,
    "run.attempt_failed": _attempt_failed,
    "run.dead": _dead,
    "run.cancel_requested": _cancel_requested,
    "run.canceled": _canceled,
    "run.deduplicated": _deduplicated,
    "run.deferred": _deferred,
    "approval.requested": _approval_requested,
    "approval.granted": _decided,
    "approval.rejected": _decided,
    "run.waiting": _waiting,
    "run.resumed": _wait_ended,
    "run.wait_timed_out": _wait_ended,
    "run.rerun_requested": _rerun_requested,
    "run.debounced": _debounced,
}

MODEL = Model(TABLE, KEY, COLUMNS, STRUCTURED, RULES, key_of, run_stream)
