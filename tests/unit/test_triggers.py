"""Which tasks an external event fires: topic globs, filters, condition edges, validation."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.errors import RuleViolation
from domain.events import ConditionEvaluated, EventReceived, RunQueued, TaskDefinition
from domain.tasks import decide_create
from domain.triggers import ConditionState, Subscriber, decide_triggers, topic_matches

NOW = datetime(2030, 1, 1, 9, tzinfo=UTC)


def received(topic: str, **payload: Any) -> EventReceived:
    return EventReceived(event_id="e1", topic=topic, payload=payload, source="api")


def task(task_id: str, expr: str, kind: str = "event", **fields: Any) -> Subscriber:
    definition = TaskDefinition(title=task_id, schedule_kind=kind, schedule_expr=expr, **fields)  # type: ignore[arg-type]
    return Subscriber(task_id, "owner", definition)


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"run-{next(counter)}"


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("calendar.*", "calendar.created", True),
        ("calendar.*", "calendar.event.moved", True),
        ("calendar.*", "calendar", False),
        ("calendar.*", "Calendar.created", False),
        ("order.?", "order.1", True),
        ("order.?", "order.12", False),
        ("build.done", "build.done", True),
        ("build_done", "buildXdone", False),
        ("*", "anything:at-all", True),
    ],
)
def test_topics_match_their_globs(pattern: str, topic: str, matches: bool) -> None:
    assert topic_matches(pattern, topic) is matches


def test_an_event_fires_each_matching_task_once_with_the_event_in_the_run() -> None:
    tasks = [task("a", "calendar.*"), task("b", "calendar.created"), task("c", "mail.*")]
    fired = decide_triggers(received("calendar.created", id=7), tasks, {}, NOW, ids())
    assert [(r.task_id, r.trigger) for r in fired if isinstance(r, RunQueued)] == [
        ("a", "event"),
        ("b", "event"),
    ]
    run = fired[0]
    assert isinstance(run, RunQueued)
    assert run.event == {
        "topic": "calendar.created",
        "payload": {"id": 7},
        "occurred_at": None,
        "source": "api",
        "event_id": "e1",
    }
    assert (run.run_at, run.owner) == (NOW, "owner")


def test_a_filter_must_hold_and_a_failing_filter_does_not_fire() -> None:
    tasks = [
        task("big", "order.*", filter="payload.total > `100`"),
        task("vip", "order.*", filter="payload.customer.vip"),  # missing path on small orders
        task("topic", "order.*", filter="${topic == 'order.placed'}"),
    ]
    small = decide_triggers(received("order.placed", total=5), tasks, {}, NOW, ids())
    big = decide_triggers(received("order.placed", total=500), tasks, {}, NOW, ids())
    assert [r.task_id for r in small if isinstance(r, RunQueued)] == ["topic"]
    assert [r.task_id for r in big if isinstance(r, RunQueued)] == ["big", "topic"]


def test_a_condition_fires_on_the_edge_and_records_only_changes() -> None:
    hot = task("hot", "sensor.*", "condition", condition="event.payload.t > `30`")
    state = ConditionState()
    fired_at = []
    for n, t in enumerate([10, 35, 40, 20, 31, 32]):
        changes = decide_triggers(received("sensor.temp", t=t), [hot], {"hot": state}, NOW, ids())
        for change in changes:
            if isinstance(change, ConditionEvaluated):
                state = ConditionState(change.value, change.payload)
            else:
                fired_at.append(n)
        if n in (2, 5):
            assert changes == []  # stayed true: nothing recorded, nothing fired
    assert fired_at == [1, 4]
    assert state == ConditionState(True, {"t": 31})


def test_a_condition_sees_the_state_its_last_change_left() -> None:
    rising = task(
        "up",
        "price",
        "condition",
        condition="state.payload == null || event.payload.p > state.payload.p",
    )
    first = decide_triggers(received("price", p=10), [rising], {}, NOW, ids())
    assert [type(c).__name__ for c in first] == ["ConditionEvaluated", "RunQueued"]
    assert isinstance(first[1], RunQueued)
    assert first[1].trigger == "condition"
    state = {"up": ConditionState(True, {"p": 10})}
    assert decide_triggers(received("price", p=5), [rising], state, NOW, ids())[0] == (
        ConditionEvaluated(
            task_id="up", value=False, previous=True, event_id="e1", topic="price", payload={"p": 5}
        )
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"schedule_kind": "condition", "schedule_expr": "a.*"}, "condition"),
        ({"schedule_kind": "condition", "schedule_expr": "a.*", "condition": "a ||"}, "condition"),
        ({"schedule_kind": "event", "schedule_expr": "a.*", "filter": "payload.[x"}, "filter"),
        ({"schedule_kind": "event", "schedule_expr": "a.*", "condition": "a"}, "condition"),
        ({"schedule_kind": "cron", "schedule_expr": "* * * * *", "filter": "a"}, "filter"),
        (
            {
                "schedule_kind": "condition",
                "schedule_expr": "a",
                "condition": "a",
                "condition_cron": "*/5 * * * *",
            },
            "condition_cron",
        ),
        ({"schedule_kind": "event", "schedule_expr": "has space"}, "schedule_expr"),
        (
            {"schedule_kind": "event", "schedule_expr": "a", "filter": "(" * 990 + "a" + ")" * 990},
            "filter",
        ),
    ],
)
def test_bad_event_and_condition_tasks_are_refused_naming_the_field(
    fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(RuleViolation) as refused:
        decide_create("t", TaskDefinition(title="t", **fields), NOW)
    assert refused.value.field == field


def test_condition_tasks_are_accepted() -> None:
    definition = TaskDefinition(
        title="t",
        schedule_kind="condition",
        schedule_expr="sensor.*",
        condition="event.payload.t > `30`",
        filter="source == 'api'",
    )
    (created,) = decide_create("t", definition, NOW)
    assert created.next_run_at is None  # type: ignore[union-attr]
