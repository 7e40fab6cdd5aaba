"""A condition task fires exactly on its false-to-true edges, whatever the event sequence."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from domain.events import ConditionEvaluated, EventReceived, RunQueued, TaskDefinition
from domain.triggers import ConditionState, Subscriber, decide_triggers, edge, evolve_condition

NOW = datetime(2030, 1, 1, tzinfo=UTC)
TASK = Subscriber(
    "c",
    "owner",
    TaskDefinition(
        title="c", schedule_kind="condition", schedule_expr="s.*", condition="event.payload.on"
    ),
)


@given(st.lists(st.booleans(), max_size=60))
def test_the_edge_rule_fires_once_per_rise(values: list[bool]) -> None:
    previous: bool | None = None
    fires = []
    for value in values:
        record, fire = edge(previous, value)
        assert record == (previous is not value)
        fires.append(fire)
        previous = value
    rises = [v and (i == 0 or not values[i - 1]) for i, v in enumerate(values)]
    assert fires == rises


@given(st.lists(st.tuples(st.sampled_from(["s.a", "s.b", "other"]), st.booleans()), max_size=40))
def test_decisions_over_events_fire_on_rises_of_matching_events_only(
    events: list[tuple[str, bool]],
) -> None:
    counter = itertools.count()
    state = ConditionState()
    runs, recorded = 0, 0
    for topic, on in events:
        event = EventReceived(event_id="e", topic=topic, payload={"on": on})
        decided = decide_triggers(event, [TASK], {"c": state}, NOW, lambda: str(next(counter)))
        for change in decided:
            if isinstance(change, ConditionEvaluated):
                state, recorded = evolve_condition(state, change), recorded + 1
            else:
                assert isinstance(change, RunQueued)
                assert change.trigger == "condition"
                runs += 1
    seen = [on for topic, on in events if topic != "other"]
    assert runs == sum(v and (i == 0 or not seen[i - 1]) for i, v in enumerate(seen))
    assert recorded == sum(i == 0 or v != seen[i - 1] for i, v in enumerate(seen))
