"""What each event does to its run's work row (projections/rules/due_work.py), no database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.events import (
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    Event,
    RunAttemptFailed,
    RunCanceled,
    RunDead,
    RunDeduplicated,
    RunDeferred,
    RunQueued,
    RunResumed,
    RunStarted,
    RunSucceeded,
    RunWaiting,
    RunWaitTimedOut,
)
from projections.rules import due_work as rules
from projections.rules.row import Row
from tests.unit.projections.support import AT, LATER, envelope

QUEUED = RunQueued(
    run_id="r-1",
    task_id="t-1",
    owner="alice",
    scheduled_for=AT,
    run_at=AT,
    priority=2,
    concurrency_key="mail",
    max_concurrency=3,
    dedupe_key="daily",
    dedupe_window_seconds=60,
)
ROW: Row = {
    "run_id": "r-1",
    "task_id": "t-1",
    "scheduled_for": AT,
    "run_at": AT,
    "priority": 2,
    "concurrency_key": "alice/mail",
    "attempt": 1,
    "locked_by": None,
    "locked_until": None,
    "created_at": AT,
    "max_concurrency": 3,
    "dedupe_key": "alice/daily",
    "dedupe_window_seconds": 60,
    "parked": False,
    "lapses": 0,
}
LEASED = {**ROW, "locked_by": "w-1", "locked_until": LATER, "lapses": 1}
DEADLINE = LATER + timedelta(hours=1)
# The run's row, as the runs rules leave it, for work re-created after a decision.
RUN: Row = {
    "run_id": "r-1",
    "task_id": "t-1",
    "scheduled_for": AT,
    "priority": 2,
    "concurrency_key": "alice/mail",
    "attempt": 2,
    "queued": {"max_concurrency": 3},
}


def apply(event: Event, row: Row | None = ROW, run: Row | None = RUN) -> Row | None:
    envelope_ = envelope("run-r-1", event, at=LATER)
    return rules.RULES[envelope_.type](row, envelope_, run)


def test_queued_adds_work_with_the_runs_flow_control() -> None:
    assert rules.RULES["run.queued"](None, envelope("run-r-1", QUEUED, version=1), None) == ROW


def test_queued_again_is_due_afresh_unleased_and_unparked() -> None:
    again = RunQueued(
        run_id="r-1", task_id="t-1", owner="alice", scheduled_for=AT, run_at=LATER, attempt=2
    )
    parked = {**LEASED, "parked": True}
    assert apply(again, parked) == {**ROW, "run_at": LATER, "attempt": 2}


@pytest.mark.parametrize(("resumed", "lapses"), [(False, 1), (True, 2)])
def test_started_leases_the_work_and_counts_a_resumed_start_as_a_lapse(
    resumed: bool, lapses: int
) -> None:
    started = RunStarted(
        run_id="r-1", attempt=2, worker="w-2", lease_until=DEADLINE, resumed=resumed
    )
    assert apply(started, LEASED) == {
        **LEASED,
        "locked_by": "w-2",
        "locked_until": DEADLINE,
        "attempt": 2,
        "lapses": lapses,
    }


def test_an_attempt_that_failed_is_due_at_its_retry_unleased() -> None:
    failed = RunAttemptFailed(run_id="r-1", attempt=1, error="boom", retry_at=DEADLINE)
    assert apply(failed, LEASED) == {**ROW, "run_at": DEADLINE, "attempt": 2}


def test_deferred_work_is_due_when_quiet_hours_end() -> None:
    deferred = RunDeferred(run_id="r-1", step_id="s", attempt=1, until=DEADLINE)
    assert apply(deferred, LEASED) == {**ROW, "run_at": DEADLINE}


@pytest.mark.parametrize(
    "parking",
    [
        ApprovalRequested(run_id="r-1", step_id="ok", message="?", expires_at=DEADLINE),
        RunWaiting(run_id="r-1", step_id="w", attempt=1, kind="sleep", tool="t", until=DEADLINE),
    ],
)
def test_parked_with_a_deadline_is_due_at_the_deadline(parking: Event) -> None:
    assert apply(parking, LEASED) == {
        **LEASED,
        "parked": True,
        "run_at": DEADLINE,
        "locked_by": None,
        "locked_until": None,
    }


@pytest.mark.parametrize(
    "parking",
    [
        ApprovalRequested(run_id="r-1", step_id="ok", message="?"),
        RunWaiting(run_id="r-1", step_id="w", attempt=1, kind="event", tool="t", topic="x"),
    ],
)
def test_parked_without_a_deadline_holds_no_work(parking: Event) -> None:
    assert apply(parking, LEASED) is None


UNPARKING = [
    ApprovalGranted(run_id="r-1", step_id="ok"),
    ApprovalRejected(run_id="r-1", step_id="ok"),
    RunResumed(run_id="r-1", step_id="w", reason="woke"),
    RunWaitTimedOut(run_id="r-1", step_id="w", failed=True),
]


@pytest.mark.parametrize("event", UNPARKING)
def test_an_end_of_parking_makes_parked_work_due_now(event: Event) -> None:
    parked = {**LEASED, "parked": True, "run_at": DEADLINE}
    assert apply(event, parked) == {
        **LEASED,
        "run_at": LATER,
        "locked_by": None,
        "locked_until": None,
    }


@pytest.mark.parametrize("event", UNPARKING)
def test_an_end_of_parking_recreates_work_from_the_run(event: Event) -> None:
    assert apply(event, None) == {
        "run_id": "r-1",
        "task_id": "t-1",
        "scheduled_for": AT,
        "run_at": LATER,
        "priority": 2,
        "concurrency_key": "alice/mail",
        "attempt": 2,
        "locked_by": None,
        "locked_until": None,
        "created_at": LATER,
        "max_concurrency": 3,
        "dedupe_key": None,
        "dedupe_window_seconds": None,
        "parked": False,
        "lapses": 0,
    }
    assert apply(event, None, {**RUN, "queued": {}})["max_concurrency"] == 1  # type: ignore[index]
    assert apply(event, None, None) is None


@pytest.mark.parametrize(
    "event",
    [
        RunSucceeded(run_id="r-1", attempt=1),
        RunDead(run_id="r-1", attempt=1, error="e"),
        RunCanceled(run_id="r-1"),
        RunDeduplicated(run_id="r-1", dedupe_key="k", duplicate_of="r-0"),
    ],
)
def test_a_finished_run_holds_no_work(event: Event) -> None:
    assert apply(event, LEASED) is None


@pytest.mark.parametrize(
    "event",
    [
        RunStarted(run_id="r-1", attempt=1, worker="w", lease_until=AT),
        RunAttemptFailed(run_id="r-1", attempt=1, error="e", retry_at=AT),
        RunDeferred(run_id="r-1", step_id="s", attempt=1, until=AT),
        ApprovalRequested(run_id="r-1", step_id="ok", message="?", expires_at=AT),
    ],
)
def test_an_update_of_absent_work_makes_none(event: Event) -> None:
    assert apply(event, None) is None


def test_only_the_end_of_parking_reads_the_run() -> None:
    reading = {type(e).__struct_config__.tag for e in UNPARKING}
    assert reading == rules.READS_RUN


def test_the_projection_handles_exactly_the_rules_table() -> None:
    from projections.due_work import DueWorkProjection

    handled: Any = DueWorkProjection.handles
    assert handled == frozenset(rules.RULES)


def test_the_events_said_to_remove_work_remove_it_whatever_it_held() -> None:
    for kind in rules.MODEL.removes:
        rule = rules.RULES[kind]
        assert rule(LEASED, envelope("run-r-1", RunSucceeded(run_id="r-1", attempt=1)), RUN) is None
        assert rule(None, envelope("run-r-1", RunSucceeded(run_id="r-1", attempt=1)), None) is None
