"""The ownership rows an insert statement files itself (projections/ownership.py's
``owners_at_insert``) are exactly the rows the projection's plan gives once the events are
stored, and only events that need nothing more qualify."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.events import EventReceived, TaskPaused
from domain.ownership import ADMIN
from projections.ownership import _OWN, OwnershipProjection, owners_at_insert
from projections.registry import inline_projections
from tests.unit.projections.support import envelope

actors = st.sampled_from([ADMIN, "alice", "bob"])


def _received(n: int) -> EventReceived:
    return EventReceived(event_id=f"e-{n}", topic="orders", payload={"n": n})


@given(st.lists(actors, min_size=1, max_size=20))
def test_external_events_get_the_rows_the_plan_gives(by: list[str]) -> None:
    events = [(_received(n), actor) for n, actor in enumerate(by)]
    owners = owners_at_insert(inline_projections(), events)
    assert owners is not None
    projection = OwnershipProjection()
    for position, ((event, actor), owner) in enumerate(zip(events, owners, strict=True)):
        planned = projection.plan(envelope("topic-orders", event, actor=actor, position=position))
        assert planned == ([] if owner is None else [(_OWN, (position, owner))])


def test_an_event_another_projection_handles_needs_the_projections() -> None:
    events = [(_received(1), "alice"), (TaskPaused(task_id="t-1"), "alice")]
    assert owners_at_insert(inline_projections(), events) is None


def test_an_event_whose_owner_is_its_streams_needs_the_projections() -> None:
    # Only ownership handles it here, but its owner is read from stream_owner.
    ownership_only = inline_projections().named(["ownership"])
    assert owners_at_insert(ownership_only, [(TaskPaused(task_id="t-1"), "alice")]) is None
    assert owners_at_insert(ownership_only, [(_received(1), "alice")]) == ["alice"]
