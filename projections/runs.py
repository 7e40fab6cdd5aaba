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
    RunDeduplicated,
    RunDeferred,
    RunQueued,
    RunStarted,
    RunStepFailed,
    RunStepSkipped,
    RunStepSucceeded,
    RunSucceeded,
)
from domain.ownership import scoped_key
from projections.base import Connection, Statement, run_plan

_QUEUE = """
INSERT INTO runs (run_id, task_id, owner, status, trigger, attempt, priority, scheduled_for,
                  run_at, queued_at, dedupe_key, concurrency_key, queued, version)
VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13)
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
                return [(_QUEUE, (
                    e.run_id, e.task_id, e.owner, e.trigger, e.attempt, e.priority,
                    e.scheduled_for, e.run_at, at, scoped_key(e.owner, e.dedupe_key),
                    scoped_key(e.owner, e.concurrency_key),
                    _json(e), version,
                ))]  # fmt: skip
            case RunStarted() as e:
                return [(_START, (e.run_id, e.attempt, e.worker, at, version))]
            case RunStepSucceeded() as e:
                step = {"status": "succeeded", "tool": e.tool, "input": e.input,
                        "output": e.output, "duration_ms": e.duration_ms,
                        "attempt": e.attempt, "at": at}  # fmt: skip
                if e.cost:
                    step["cost"] = e.cost
                return [(_STEP, (e.run_id, e.step_id, _json(step), version))]
            case RunStepFailed() as e:
                step = {"status": "failed", "tool": e.tool, "input": e.input, "error": e.error,
                        "duration_ms": e.duration_ms, "attempt": e.attempt,
                        "continued": e.continued, "at": at}  # fmt: skip
                return [(_STEP, (e.run_id, e.step_id, _json(step), version))]
            case RunStepSkipped() as e:
                step = {"status": "skipped", "condition": e.condition, "attempt": e.attempt,
                        "at": at}  # fmt: skip
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
                approval = {"step_id": e.step_id, "message": e.message, "data": e.data,
                            "expires_at": e.expires_at, "on_timeout": e.on_timeout,
                            "status": "pending", "requested_at": at}  # fmt: skip
                step = {"status": "waiting", "tool": "orchestrator.request_approval",
                        "input": {"message": e.message, "data": e.data}, "at": at}  # fmt: skip
                return [(_APPROVAL_REQUESTED, (e.run_id, _json(approval), version, e.step_id,
                                               _json(step)))]  # fmt: skip
            case ApprovalGranted() | ApprovalRejected() as e:
                return [_decided(envelope, e)]
        return []


def _decided(envelope: Envelope, e: ApprovalGranted | ApprovalRejected) -> Statement:
    approved = isinstance(e, ApprovalGranted)
    items = e.approved_items if isinstance(e, ApprovalGranted) else []
    by = envelope.meta.actor
    output = {"status": "approved" if approved else "rejected", "approved_items": items,
              "comment": e.comment, "by": by, "expired": e.expired}  # fmt: skip
    decision = {"status": output["status"], "comment": e.comment, "by": by,
                "approved_items": items, "decided_at": envelope.recorded_at,
                "expired": e.expired}  # fmt: skip
    step = {"status": "succeeded", "tool": "orchestrator.request_approval",
            "output": output, "at": envelope.recorded_at}  # fmt: skip
    return (_APPROVAL_DECIDED, (e.run_id, _json(decision), _json(step), envelope.version,
                                envelope.recorded_at))  # fmt: skip
