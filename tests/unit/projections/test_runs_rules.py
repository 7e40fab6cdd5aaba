"""What each event does to its run's row (projections/rules/runs.py), without a database."""

from __future__ import annotations

from typing import Any

import pytest

from domain.events import (
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    Event,
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
from projections.rules import runs as rules
from projections.rules.row import Row
from tests.unit.projections.support import AT, LATER, envelope

QUEUED = RunQueued(
    run_id="r-1",
    task_id="t-1",
    owner="alice",
    scheduled_for=AT,
    run_at=AT,
    concurrency_key="mail",
    dedupe_key="shared:daily",
)
# As JSON gives instants back: what a jsonb column holds.
AT_TEXT, LATER_TEXT = "2030-01-01T09:00:00Z", "2030-01-01T10:00:00Z"
ROW: Row = {
    "run_id": "r-1",
    "task_id": "t-1",
    "owner": "alice",
    "status": "queued",
    "trigger": "schedule",
    "attempt": 1,
    "priority": 5,
    "scheduled_for": AT,
    "run_at": AT,
    "queued_at": AT,
    "started_at": None,
    "finished_at": None,
    "worker": None,
    "error": None,
    "dedupe_key": "shared:daily",
    "concurrency_key": "alice/mail",
    "cancel_requested": False,
    "queued": {
        "type": "run.queued",
        "run_id": "r-1",
        "task_id": "t-1",
        "owner": "alice",
        "scheduled_for": AT_TEXT,
        "run_at": AT_TEXT,
        "attempt": 1,
        "trigger": "schedule",
        "priority": 5,
        "concurrency_key": "mail",
        "max_concurrency": 1,
        "dedupe_key": "shared:daily",
        "dedupe_window_seconds": None,
        "event": None,
        "rerun_of": None,
        "from_step": None,
        "debounce_key": None,
    },
    "steps": {},
    "approval": None,
    "version": 1,
    "wait": None,
    "rerun_of": None,
    "reruns": [],
    "debounce_key": None,
}


def apply(event: Event, row: Row | None = ROW, *, actor: str = "bob") -> Row | None:
    envelope_ = envelope("run-r-1", event, at=LATER, actor=actor)
    return rules.RULES[envelope_.type](row, envelope_)


def versioned(row: Row = ROW, **columns: Any) -> Row:
    """``row`` as a later event (version 2) leaves it, with ``columns`` changed."""
    return {**row, "version": 2, **columns}


def test_queued_makes_a_row_with_owner_scoped_keys_and_the_queueing_event() -> None:
    row = rules.RULES["run.queued"](None, envelope("run-r-1", QUEUED, version=1))
    assert row == ROW


def test_queued_again_replaces_the_attempt_and_due_time_and_clears_the_end() -> None:
    ended = {**ROW, "status": "dead", "finished_at": AT, "cancel_requested": True}
    again = RunQueued(
        run_id="r-1", task_id="t-1", owner="alice", scheduled_for=AT, run_at=LATER, attempt=2
    )
    assert apply(again, ended) == versioned(
        ended,
        status="queued",
        attempt=2,
        run_at=LATER,
        finished_at=None,
        cancel_requested=False,
    )


def test_started_keeps_the_first_start() -> None:
    started = RunStarted(run_id="r-1", attempt=1, worker="w-1", lease_until=LATER)
    assert apply(started) == versioned(status="running", worker="w-1", started_at=LATER)
    earlier = {**ROW, "started_at": AT}
    restarted = RunStarted(run_id="r-1", attempt=2, worker="w-2", lease_until=LATER)
    assert apply(restarted, earlier) == versioned(
        earlier, status="running", attempt=2, worker="w-2", started_at=AT
    )


def test_a_step_that_succeeded_records_its_input_output_and_cost() -> None:
    step = RunStepSucceeded(
        run_id="r-1",
        step_id="echo",
        attempt=1,
        tool="debug.echo",
        input={"text": "hi"},
        output={"text": "hi"},
        duration_ms=1.5,
        cost=0.25,
    )
    recorded = {
        "status": "succeeded",
        "tool": "debug.echo",
        "input": {"text": "hi"},
        "output": {"text": "hi"},
        "duration_ms": 1.5,
        "attempt": 1,
        "at": LATER_TEXT,
        "cost": 0.25,
    }
    assert apply(step) == versioned(steps={"echo": recorded})


def test_a_step_that_failed_records_its_error() -> None:
    step = RunStepFailed(
        run_id="r-1", step_id="s", attempt=2, tool="http.get", error="boom", continued=True
    )
    assert apply(step) == versioned(
        steps={
            "s": {
                "status": "failed",
                "tool": "http.get",
                "input": None,
                "error": "boom",
                "duration_ms": 0.0,
                "attempt": 2,
                "continued": True,
                "at": LATER_TEXT,
            }
        }
    )


def test_a_skipped_step_records_its_condition_and_replaces_an_earlier_record() -> None:
    before = {**ROW, "steps": {"s": {"status": "failed"}, "t": {"status": "succeeded"}}}
    skipped = RunStepSkipped(run_id="r-1", step_id="s", attempt=1, condition="false")
    assert apply(skipped, before) == versioned(
        before,
        steps={
            "s": {"status": "skipped", "condition": "false", "attempt": 1, "at": LATER_TEXT},
            "t": {"status": "succeeded"},
        },
    )


def test_succeeded_clears_an_earlier_attempts_error() -> None:
    failed = {**ROW, "error": "first attempt failed"}
    assert apply(RunSucceeded(run_id="r-1", attempt=2), failed) == versioned(
        failed, status="succeeded", error=None, finished_at=LATER
    )


def test_an_attempt_that_failed_is_queued_again_for_the_retry() -> None:
    running = {**ROW, "status": "running", "worker": "w-1"}
    failed = RunAttemptFailed(run_id="r-1", attempt=1, error="boom", retry_at=LATER)
    assert apply(failed, running) == versioned(
        running, status="queued", attempt=2, error="boom", run_at=LATER, worker=None
    )


@pytest.mark.parametrize(
    ("event", "status", "error"),
    [
        (RunDead(run_id="r-1", attempt=3, error="gave up"), "dead", "gave up"),
        (RunCanceled(run_id="r-1", reason="by hand"), "canceled", "by hand"),
        (RunCanceled(run_id="r-1"), "canceled", "last error"),
        (
            RunDeduplicated(run_id="r-1", dedupe_key="daily", duplicate_of="r-0"),
            "deduplicated",
            "duplicate of run r-0 (dedupe key 'daily')",
        ),
    ],
)
def test_ending_events_finish_the_run_with_their_reason(
    event: Event, status: str, error: str
) -> None:
    before = {**ROW, "error": "last error"}
    assert apply(event, before) == versioned(before, status=status, error=error, finished_at=LATER)


def test_cancel_requested_only_flags_the_row() -> None:
    assert apply(RunCancelRequested(run_id="r-1")) == versioned(cancel_requested=True)


def test_deferred_waits_for_the_end_of_quiet_hours_without_a_worker() -> None:
    running = {**ROW, "status": "running", "worker": "w-1"}
    deferred = RunDeferred(run_id="r-1", step_id="s", attempt=1, until=LATER)
    assert apply(deferred, running) == versioned(
        running, status="deferred", run_at=LATER, worker=None
    )


REQUESTED = ApprovalRequested(run_id="r-1", step_id="ok", message="Send?", data={"n": 1})
PENDING = {
    "step_id": "ok",
    "message": "Send?",
    "data": {"n": 1},
    "expires_at": None,
    "on_timeout": "reject",
    "status": "pending",
    "requested_at": LATER_TEXT,
}
ASKED = {
    "status": "waiting",
    "tool": "orchestrator.request_approval",
    "input": {"message": "Send?", "data": {"n": 1}},
    "at": LATER_TEXT,
}


def test_approval_requested_parks_the_run_with_its_question() -> None:
    running = {**ROW, "status": "running", "worker": "w-1"}
    assert apply(REQUESTED, running) == versioned(
        running,
        status="awaiting_approval",
        approval=PENDING,
        worker=None,
        steps={"ok": ASKED},
    )


@pytest.mark.parametrize("granted", [True, False])
def test_a_decision_queues_the_run_again_and_completes_the_approval_step(granted: bool) -> None:
    parked = {**ROW, "status": "awaiting_approval", "approval": PENDING, "steps": {"ok": ASKED}}
    event: Event = (
        ApprovalGranted(run_id="r-1", step_id="ok", comment="go", approved_items=[1])
        if granted
        else ApprovalRejected(run_id="r-1", step_id="ok", comment="no")
    )
    status, items = ("approved", [1]) if granted else ("rejected", [])
    row = apply(event, parked, actor="carol")
    assert row is not None
    assert (row["status"], row["run_at"], row["version"]) == ("queued", LATER, 2)
    assert row["approval"] == {
        **PENDING,
        "status": status,
        "comment": event.comment,
        "by": "carol",
        "approved_items": items,
        "decided_at": LATER_TEXT,
        "expired": False,
    }
    output = {
        "status": status,
        "approved_items": items,
        "comment": event.comment,
        "by": "carol",
        "expired": False,
    }
    # The decision is added to the step that asked (its input stays).
    assert row["steps"] == {
        "ok": {**ASKED, "status": "succeeded", "output": output, "at": LATER_TEXT}
    }


def test_a_decision_for_a_run_with_no_approval_is_refused() -> None:
    with pytest.raises(ValueError, match="approval"):
        apply(ApprovalGranted(run_id="r-1", step_id="ok"))


WAITING = RunWaiting(
    run_id="r-1", step_id="w", attempt=1, kind="event", tool="orchestrator.wait", topic="paid"
)


def _waiting_row() -> Row:
    row = apply(WAITING)
    assert row is not None
    return row


def test_waiting_parks_the_run_with_what_it_waits_for() -> None:
    row = _waiting_row()
    assert (row["status"], row["worker"]) == ("waiting", None)
    assert row["wait"]["topic"] == "paid"
    assert row["wait"]["status"] == "waiting"
    assert row["wait"]["waiting_since"] == LATER_TEXT
    assert row["steps"] == {
        "w": {
            "status": "waiting",
            "tool": "orchestrator.wait",
            "input": None,
            "attempt": 1,
            "at": LATER_TEXT,
        }
    }


@pytest.mark.parametrize(
    ("event", "ended", "step"),
    [
        (
            RunResumed(run_id="r-1", step_id="w", reason="event", output={"n": 1}),
            "resumed",
            {"status": "succeeded", "output": {"n": 1}},
        ),
        (
            RunResumed(run_id="r-1", step_id="w", reason="woke"),
            "woke",
            {"status": "succeeded", "output": None},
        ),
        (
            RunWaitTimedOut(run_id="r-1", step_id="w", failed=True),
            "timed_out",
            {"status": "timed_out"},
        ),
        (
            RunWaitTimedOut(run_id="r-1", step_id="w", failed=False, output=0),
            "timed_out",
            {"status": "succeeded", "output": 0, "timed_out": True},
        ),
    ],
)
def test_a_wait_that_ends_queues_the_run_again_with_the_steps_outcome(
    event: Event, ended: str, step: dict[str, Any]
) -> None:
    waiting = _waiting_row()
    row = apply(event, waiting)
    assert row is not None
    assert (row["status"], row["run_at"]) == ("queued", LATER)
    assert row["wait"] == {**waiting["wait"], "status": ended, "ended_at": LATER_TEXT}
    assert row["steps"]["w"] == {**waiting["steps"]["w"], **step, "at": LATER_TEXT}


def test_a_rerun_is_listed_on_the_original() -> None:
    rerun = RunRerunRequested(run_id="r-1", rerun_id="r-2", from_step="s")
    once = apply(rerun)
    assert once == versioned(reruns=["r-2"])
    again = RunRerunRequested(run_id="r-1", rerun_id="r-3", from_step="s")
    assert apply(again, once) == versioned(reruns=["r-2", "r-3"])


def test_debounced_replaces_the_event_the_run_will_see() -> None:
    debounced = RunDebounced(run_id="r-1", event={"topic": "x", "n": 2}, count=2)
    assert apply(debounced) == versioned(queued={**ROW["queued"], "event": {"topic": "x", "n": 2}})


@pytest.mark.parametrize("event_type", sorted(rules.RULES.keys() - {"run.queued"}))
def test_an_event_for_a_run_with_no_row_makes_none(event_type: str) -> None:
    examples: dict[str, Event] = {
        "run.started": RunStarted(run_id="r-1", attempt=1, worker="w", lease_until=AT),
        "run.step_succeeded": RunStepSucceeded(run_id="r-1", step_id="s", attempt=1, tool="t"),
        "run.step_failed": RunStepFailed(run_id="r-1", step_id="s", attempt=1, tool="t", error="e"),
        "run.step_skipped": RunStepSkipped(run_id="r-1", step_id="s", attempt=1, condition="c"),
        "run.succeeded": RunSucceeded(run_id="r-1", attempt=1),
        "run.attempt_failed": RunAttemptFailed(run_id="r-1", attempt=1, error="e", retry_at=AT),
        "run.dead": RunDead(run_id="r-1", attempt=1, error="e"),
        "run.cancel_requested": RunCancelRequested(run_id="r-1"),
        "run.canceled": RunCanceled(run_id="r-1"),
        "run.deduplicated": RunDeduplicated(run_id="r-1", dedupe_key="k", duplicate_of="r-0"),
        "run.deferred": RunDeferred(run_id="r-1", step_id="s", attempt=1, until=AT),
        "approval.requested": REQUESTED,
        "approval.granted": ApprovalGranted(run_id="r-1", step_id="ok"),
        "approval.rejected": ApprovalRejected(run_id="r-1", step_id="ok"),
        "run.waiting": WAITING,
        "run.resumed": RunResumed(run_id="r-1", step_id="w", reason="woke"),
        "run.wait_timed_out": RunWaitTimedOut(run_id="r-1", step_id="w", failed=True),
        "run.rerun_requested": RunRerunRequested(run_id="r-1", rerun_id="r-2", from_step="s"),
        "run.debounced": RunDebounced(run_id="r-1", event={}, count=1),
    }
    assert apply(examples[event_type], None) is None


def test_the_projection_handles_exactly_the_rules_table() -> None:
    from projections.rows import RuleProjection

    assert RuleProjection("runs", rules.MODEL).handles == frozenset(rules.RULES)
