"""Who owns each stream and event, and what steps cost (projections/rules/ownership.py and
spend.py), without a database."""

from __future__ import annotations

import ast
import inspect
import textwrap
from datetime import UTC, date, datetime, timedelta, timezone
from typing import get_args

from domain import ownership as domain_ownership
from domain.events import (
    ConditionEvaluated,
    Event,
    EventReceived,
    RunQueued,
    RunStarted,
    RunStepSucceeded,
    TaskCreated,
    TaskDefinition,
)
from projections.rules import ownership, spend
from tests.unit.projections.support import AT, envelope

DEFINITION = TaskDefinition(title="t", schedule_kind="cron", schedule_expr="* * * * *")
OWNERS = {"task-t-1": "alice", "task-t-2": "admin", "run-r-1": "alice"}


def file(stream: str, event: object, actor: str = "alice") -> ownership.Filing:
    return ownership.file_event(OWNERS.get, envelope(stream, event, actor=actor))  # type: ignore[arg-type]


def test_an_opening_event_gives_a_new_stream_its_owner_and_files_itself_for_it() -> None:
    created = TaskCreated(task_id="t-9", definition=DEFINITION)
    assert file("task-t-9", created, "bob") == ownership.Filing(("task-t-9", "bob"), "bob")
    queued = RunQueued(run_id="r-9", task_id="t-1", owner="carol", scheduled_for=AT, run_at=AT)
    assert file("run-r-9", queued, "scheduler") == ownership.Filing(("run-r-9", "carol"), "carol")


def test_a_stream_keeps_its_first_owner_but_a_reopening_event_is_its_openers() -> None:
    created = TaskCreated(task_id="t-1", definition=DEFINITION)
    assert file("task-t-1", created, "bob") == ownership.Filing(None, "bob")


def test_the_admins_events_are_filed_for_no_one() -> None:
    created = TaskCreated(task_id="t-9", definition=DEFINITION)
    assert file("task-t-9", created, "admin") == ownership.Filing(("task-t-9", "admin"), None)
    received = EventReceived(event_id="e", topic="x", payload={})
    assert file("topic-x", received, "admin") == ownership.Filing(None, None)


def test_an_external_event_is_its_publishers() -> None:
    received = EventReceived(event_id="e", topic="x", payload={})
    assert file("topic-x", received, "bob") == ownership.Filing(None, "bob")


def test_any_other_event_is_its_streams_owners() -> None:
    started = RunStarted(run_id="r-1", attempt=1, worker="w", lease_until=AT)
    assert file("run-r-1", started, "w") == ownership.Filing(None, "alice")
    assert file("run-r-unknown", started, "w") == ownership.Filing(None, None)


def test_a_condition_inherits_its_tasks_owner() -> None:
    evaluated = ConditionEvaluated(
        task_id="t-1", value=True, previous=None, event_id="e", topic="x"
    )
    assert file("condition-t-1", evaluated, "scheduler") == ownership.Filing(
        ("condition-t-1", "alice"), "alice"
    )
    admins = ConditionEvaluated(task_id="t-2", value=True, previous=None, event_id="e", topic="x")
    assert file("condition-t-2", admins, "scheduler") == ownership.Filing(
        ("condition-t-2", "admin"), None
    )


RUN = {"run_id": "r-1", "task_id": "t-1", "owner": "alice"}


def step(cost: float, cost_day: str | None = None) -> RunStepSucceeded:
    return RunStepSucceeded(
        run_id="r-1", step_id="s", attempt=1, tool="t", cost=cost, cost_day=cost_day
    )


def test_a_steps_cost_is_booked_to_its_tasks_day_and_its_agents_utc_day() -> None:
    late = datetime(2030, 1, 1, 23, 30, tzinfo=timezone(-timedelta(hours=2)))  # 01:30 UTC
    booked = spend.costs(RUN, envelope("run-r-1", step(0.5, "2029-12-31"), at=late))
    assert booked == [
        (("task", "t-1", date(2029, 12, 31)), 0.5),
        (("agent", "alice", date(2030, 1, 2)), 0.5),
    ]


def test_without_a_cost_day_the_task_is_booked_on_the_day_the_step_was_recorded() -> None:
    at = datetime(2030, 1, 1, 12, tzinfo=UTC)
    booked = spend.costs(RUN, envelope("run-r-1", step(1.0), at=at))
    assert booked[0] == (("task", "t-1", date(2030, 1, 1)), 1.0)


def test_a_free_step_or_a_run_with_no_row_costs_nothing() -> None:
    assert spend.costs(RUN, envelope("run-r-1", step(0.0))) == []
    assert spend.costs(None, envelope("run-r-1", step(1.0))) == []


def test_the_spend_projection_handles_exactly_its_rules_types() -> None:
    from projections.spend import SpendProjection

    assert SpendProjection.handles == spend.HANDLES


def test_every_event_class_the_ownership_rules_name_is_one_that_decides_its_owner() -> None:
    """file_event skips the rules for events outside DECIDES_OWNER: each class the rules match
    on must be in it, or an event of that class would be filed for its stream's owner."""
    event_classes = {cls.__name__: cls for cls in get_args(Event)}
    named: set[type[object]] = set()
    for rule in (domain_ownership.opened_by, domain_ownership.inherited_from):
        named |= _classes_named(rule, event_classes)
    named |= _classes_named(domain_ownership.own_owner, event_classes)
    assert named
    assert named <= set(domain_ownership.DECIDES_OWNER)


def _classes_named(rule: object, event_classes: dict[str, type[object]]) -> set[type[object]]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(rule)))  # type: ignore[arg-type]
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return {event_classes[name] for name in names if name in event_classes}
