"""The `runs` read model: each run's status, attempts and every step's input and output."""

from __future__ import annotations

from typing import Any

import msgspec

from domain.envelope import Envelope
from domain.events import (
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    RunAttemptFailed,
    RunCanceled,
    RunCancelRequested,
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
    RunSucceeded,
    RunWaiting,
    RunWaitTimedOut,
)
from domain.ownership import scoped_key
from projections.base import Connection, Statement, run_plan

_QUEUE = """
INSERT INTO runs (run_id, task_id, owner, status, trigger, attempt, priority, scheduled_for,
                  run_at, queued_at, dedupe_key, concurrency_key, queued, version, rerun_of,
                  debounce_key)
VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14, $15)
ON CONFLICT (run_id) DO UPDATE SET status = 'queued', trigger = EXCLUDED.trigger,
    attempt = EXCLUDED.attempt, run_at = EXCLUDED.run_at, finished_at = NULL,
    cancel_requested = false, version = EXCLUDED.version
"""
_START = """
UPDATE runs SET status = 'running', attempt = $2, worker = $3,
    started_at = coalesce(started_at, $4), version = $5
WHERE run_id = $1
"""
_STEP = """
UPDATE runs SET steps = steps || jsonb_build_object($2::text, $3::jsonb), version = $4
WHERE run_id = $1
"""
_FINISH = """
UPDATE runs SET status = $2, error = coalesce($3, error), finished_at = $4, version = $5
WHERE run_id = $1
"""
# The error of an earlier attempt no longer describes a run that went on to succeed.
_SUCCEED = """
UPDATE runs SET status = 'succeeded', error = NULL, finished_at = $2, version = $3
WHERE run_id = $1
"""
_RETRY = """
UPDATE runs SET status = 'queued', attempt = $2, error = $3, run_at = $4, worker = NULL,
    version = $5
WHERE run_id = $1
"""
# Quiet hours: not running, due again at ``until`` (kept in run_at, as for a retry).
_DEFER = """
UPDATE runs SET status = 'deferred', run_at = $2, worker = NULL, version = $3
WHERE run_id = $1
"""
_CANCEL_REQUESTED = "UPDATE runs SET cancel_requested = true, version = $2 WHERE run_id = $1"
_APPROVAL_REQUESTED = """
UPDATE runs SET status = 'awaiting_approval', approval = $2::jsonb, worker = NULL, version = $3,
    steps = steps || jsonb_build_object($4::text, $5::jsonb)
WHERE run_id = $1
"""
_APPROVAL_DECIDED = """
UPDATE runs SET status = 'queued', run_at = $5,
    approval = approval || $2::jsonb,
    steps = steps || jsonb_build_object(approval->>'step_id',
        coalesce(steps->(approval->>'step_id'), '{}'::jsonb) || $3::jsonb),
    version = $4
WHERE run_id = $1
"""
# Waits: parked without a worker; resumed or timed out, queued again with the step's outcome.
_WAITING = """
UPDATE runs SET status = 'waiting', wait = $2::jsonb, worker = NULL, version = $3,
    steps = steps || jsonb_build_object($4::text, $5::jsonb)
WHERE run_id = $1
"""
_WAIT_ENDED = """
UPDATE runs SET status = 'queued', run_at = $5, wait = wait || $2::jsonb,
    steps = steps || jsonb_build_object(wait->>'step_id',
        coalesce(steps->(wait->>'step_id'), '{}'::jsonb) || $3::jsonb),
    version = $4
WHERE run_id = $1
"""
_RERUN_REQUESTED = """
UPDATE runs SET reruns = reruns || jsonb_build_array($2::text), version = $3 WHERE run_id = $1
"""
_DEBOUNCED = """
UPDATE runs SET queued = jsonb_set(queued, '{event}', $2::jsonb), version = $3 WHERE run_id = $1
"""
_encode = msgspec.json.Encoder()


def _json(value: Any) -> str:
    return _encode.encode(value).decode()


class RunsProjection:
    """Maintains the `runs` table."""

    # Every statement touches only the row keyed by its first parameter (projections.base).
    keyed: bool = True
    name: str = "runs"
    tables: tuple[str, ...] = ("runs",)
    handles: frozenset[str] = frozenset(
        {
            "run.queued",
            "run.started",
            "run.step_succeeded",
            "run.step_failed",
            "run.step_skipped",
            "run.succeeded",
            "run.attempt_failed",
            "run.dead",
            "run.cancel_requested",
            "run.canceled",
            "run.deduplicated",
            "run.deferred",
            "approval.requested",
            "approval.granted",
            "approval.rejected",
            "run.waiting",
            "run.resumed",
            "run.wait_timed_out",
            "run.rerun_requested",
            "run.debounced",
        }
    )

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Change one run's row for one event."""
        await run_plan(conn, self.plan(envelope))

    def plan(self, envelope: Envelope) -> list[Statement]:
        """The statements for one event (batched with others' by the projection set)."""
        at, version = envelope.recorded_at, envelope.version
        match envelope.event:
            case RunQueued() as e:
                return [
                    (
                        _QUEUE,
                        (
                            e.run_id,
                            e.task_id,
                            e.owner,
                            e.trigger,
                            e.attempt,
                            e.priority,
                            e.scheduled_for,
                            e.run_at,
                            at,
                            scoped_key(e.owner, e.dedupe_key),
                            scoped_key(e.owner, e.concurrency_key),
                            _json(e),
                            version,
                            e.rerun_of,
                            scoped_key(e.owner, e.debounce_key),
                        ),
                    )
                ]
            case RunStarted() as e:
                return [(_START, (e.run_id, e.attempt, e.worker, at, version))]
            case RunStepSucceeded() as e:
                step = {
                    "status": "succeeded",
                    "tool": e.tool,
                    "input": e.input,
                    "output": e.output,
                    "duration_ms": e.duration_ms,
                    "attempt": e.attempt,
                    "at": at,
                }
                if e.cost:
                    step["cost"] = e.cost
                if e.reused_from:
                    step["reused_from"] = e.reused_from
                return [(_STEP, (e.run_id, e.step_id, _json(step), version))]
            case RunStepFailed() as e:
                step = {
                    "status": "failed",
                    "tool": e.tool,
                    "input": e.input,
                    "error": e.error,
                    "duration_ms": e.duration_ms,
                    "attempt": e.attempt,
                    "continued": e.continued,
                    "at": at,
                }
                return [(_STEP, (e.run_id, e.step_id, _json(step), version))]
            case RunStepSkipped() as e:
                step = {
                    "status": "skipped",
                    "condition": e.condition,
                    "attempt": e.attempt,
                    "at": at,
                }
                return [(_STEP, (e.run_id, e.step_id, _json(step), version))]
            case RunSucceeded() as e:
                return [(_SUCCEED, (e.run_id, at, version))]
            case RunAttemptFailed() as e:
                return [(_RETRY, (e.run_id, e.attempt + 1, e.error, e.retry_at, version))]
            case RunDead() as e:
                return [(_FINISH, (e.run_id, "dead", e.error, at, version))]
            case RunCancelRequested() as e:
                return [(_CANCEL_REQUESTED, (e.run_id, version))]
            case RunDeferred() as e:
                return [(_DEFER, (e.run_id, e.until, version))]
            case RunCanceled() as e:
                return [(_FINISH, (e.run_id, "canceled", e.reason, at, version))]
            case RunDeduplicated() as e:
                reason = f"duplicate of run {e.duplicate_of} (dedupe key {e.dedupe_key!r})"
                return [(_FINISH, (e.run_id, "deduplicated", reason, at, version))]
            case ApprovalRequested() as e:
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
                return [
                    (
                        _APPROVAL_REQUESTED,
                        (e.run_id, _json(approval), version, e.step_id, _json(step)),
                    )
                ]
            case ApprovalGranted() | ApprovalRejected() as e:
                return [_decided(envelope, e)]
            case RunWaiting() as e:
                return [_waiting(envelope, e)]
            case RunResumed() | RunWaitTimedOut() as e:
                return [_wait_ended(envelope, e)]
            case RunRerunRequested() as e:
                return [(_RERUN_REQUESTED, (e.run_id, e.rerun_id, version))]
            case RunDebounced() as e:
                return [(_DEBOUNCED, (e.run_id, _json(e.event), version))]
        return []


def _waiting(envelope: Envelope, e: RunWaiting) -> Statement:
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
        "waiting_since": envelope.recorded_at,
    }
    step = {
        "status": "waiting",
        "tool": e.tool,
        "input": e.input,
        "attempt": e.attempt,
        "at": envelope.recorded_at,
    }
    return (_WAITING, (e.run_id, _json(wait), envelope.version, e.step_id, _json(step)))


def _wait_ended(envelope: Envelope, e: RunResumed | RunWaitTimedOut) -> Statement:
    at = envelope.recorded_at
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
    return (_WAIT_ENDED, (e.run_id, _json(ended), _json(step), envelope.version, at))


def _decided(envelope: Envelope, e: ApprovalGranted | ApprovalRejected) -> Statement:
    approved = isinstance(e, ApprovalGranted)
    items = e.approved_items if isinstance(e, ApprovalGranted) else []
    by = envelope.meta.actor
    output = {
        "status": "approved" if approved else "rejected",
        "approved_items": items,
        "comment": e.comment,
        "by": by,
        "expired": e.expired,
    }
    decision = {
        "status": output["status"],
        "comment": e.comment,
        "by": by,
        "approved_items": items,
        "decided_at": envelope.recorded_at,
        "expired": e.expired,
    }
    step = {
        "status": "succeeded",
        "tool": "orchestrator.request_approval",
        "output": output,
        "at": envelope.recorded_at,
    }
    return (
        _APPROVAL_DECIDED,
        (e.run_id, _json(decision), _json(step), envelope.version, envelope.recorded_at),
    )
