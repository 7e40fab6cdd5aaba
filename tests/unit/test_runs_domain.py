"""The pure rules of runs: backoff, failure decisions, and commands on a run's state."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import Refusal, RuleViolation
from domain.events import ApprovalGranted, RunAttemptFailed, RunDead, TaskDefinition
from domain.runs import Failure, backoff_seconds, decide_approval, decide_cancel, decide_failure

NOW = datetime(2030, 1, 1, tzinfo=UTC)
TASK = TaskDefinition(
    title="t",
    schedule_kind="cron",
    schedule_expr="* * * * *",
    max_retries=2,
    backoff_strategy="exponential",
    backoff_base_seconds=1.0,
)


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("exponential", [1, 2, 4, 8, 10]), ("linear", [1, 2, 3, 4, 5]), ("fixed", [1, 1, 1, 1, 1])],
)
def test_backoff_grows_as_its_strategy_says_and_stays_under_the_cap(
    strategy: str, expected: list[float]
) -> None:
    got = [backoff_seconds(strategy, n, base=1.0, cap=10.0) for n in range(1, 6)]  # type: ignore[arg-type]
    assert got == expected


def test_full_jitter_stays_between_zero_and_the_exponential() -> None:
    rng = random.Random(3)
    for attempt in range(1, 30):
        delay = backoff_seconds("exponential_jitter", attempt, base=2.0, cap=60.0, rng=rng)
        assert 0 <= delay <= min(60.0, 2.0 * 2 ** (attempt - 1))


def test_a_retryable_failure_is_retried_until_retries_are_spent() -> None:
    first = decide_failure("r", 1, Failure("boom"), TASK, NOW)
    assert isinstance(first, RunAttemptFailed)
    assert (first.retry_at - NOW).total_seconds() == 1
    assert isinstance(decide_failure("r", 2, Failure("boom"), TASK, NOW), RunAttemptFailed)
    assert isinstance(decide_failure("r", 3, Failure("boom"), TASK, NOW), RunDead)


def test_a_failure_retrying_cannot_fix_is_dead_at_once() -> None:
    assert isinstance(
        decide_failure("r", 1, Failure("bad input", retryable=False), TASK, NOW), RunDead
    )


def test_cancel_refuses_a_finished_run() -> None:
    with pytest.raises(RuleViolation) as refused:
        decide_cancel("r", "succeeded", cancel_requested=False)
    assert refused.value.kind is Refusal.CONFLICT


def test_an_approver_may_pick_only_among_the_proposed_items() -> None:
    approval = {"step_id": "ok", "data": [{"to": "a"}, {"to": "b"}]}
    (granted,) = decide_approval(
        "r", "awaiting_approval", approval, approve=True, comment=None, approved_items=[{"to": "b"}]
    )
    assert isinstance(granted, ApprovalGranted)
    assert granted.approved_items == [{"to": "b"}]
    with pytest.raises(RuleViolation) as refused:
        decide_approval(
            "r",
            "awaiting_approval",
            approval,
            approve=True,
            comment=None,
            approved_items=[{"to": "mallory"}],
        )
    assert refused.value.field == "approved_items"


def test_approving_without_items_approves_everything_proposed() -> None:
    approval = {"step_id": "ok", "data": [1, 2, 3]}
    (granted,) = decide_approval("r", "awaiting_approval", approval, approve=True, comment="ok")
    assert isinstance(granted, ApprovalGranted)
    assert granted.approved_items == [1, 2, 3]


@pytest.mark.parametrize("data", [{"amount": 10}, None, "all of it", 3])
def test_items_cannot_be_picked_from_data_that_is_not_a_list(data: object) -> None:
    approval = {"step_id": "ok", "data": data}
    with pytest.raises(RuleViolation) as refused:
        decide_approval(
            "r",
            "awaiting_approval",
            approval,
            approve=True,
            comment=None,
            approved_items=[{"amount": 1_000_000}],
        )
    assert refused.value.field == "approved_items"
    (granted,) = decide_approval("r", "awaiting_approval", approval, approve=True, comment=None)
    assert isinstance(granted, ApprovalGranted)
    assert granted.approved_items == data


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=4,
)


@given(proposed=st.lists(_JSON, max_size=5), data=st.data())
def test_an_approver_picks_each_proposed_item_at_most_as_often_as_proposed(
    proposed: list[object], data: st.DataObject
) -> None:
    approval = {"step_id": "ok", "data": proposed}
    indexes = (
        data.draw(st.lists(st.integers(0, len(proposed) - 1), unique=True)) if proposed else []
    )
    picked = [proposed[i] for i in indexes]
    (granted,) = decide_approval(
        "r", "awaiting_approval", approval, approve=True, comment=None, approved_items=picked
    )
    assert isinstance(granted, ApprovalGranted)
    assert granted.approved_items == picked
    # One more copy of an item than was proposed, or a value of another JSON type, is refused.
    if proposed:
        extra = data.draw(st.sampled_from(proposed))
        with pytest.raises(RuleViolation):
            decide_approval(
                "r",
                "awaiting_approval",
                approval,
                approve=True,
                comment=None,
                approved_items=[extra] * (proposed.count(extra) + 1),
            )


def test_an_item_of_another_json_type_is_not_a_proposed_item() -> None:
    approval = {"step_id": "ok", "data": [1, {"n": 1}]}
    for foreign in (True, 1.0, {"n": True}, "1"):
        with pytest.raises(RuleViolation):
            decide_approval(
                "r",
                "awaiting_approval",
                approval,
                approve=True,
                comment=None,
                approved_items=[foreign],
            )
