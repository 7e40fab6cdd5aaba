"""A batch's ownership statements run grouped by kind within segments that give the same rows
as running them event by event (projections/ownership.py)."""

from __future__ import annotations

from projections.ownership import _INHERIT, _OPEN, _OWN, _OWN_AS_STREAM, _segments


def test_events_that_only_file_themselves_form_one_segment() -> None:
    plans = [[(_OWN, (n, "agent"))] for n in range(5)] + [[(_OWN_AS_STREAM, (9, "run-1"))]]
    assert len(_segments(plans)) == 1


def test_a_stream_opened_and_then_read_is_cut_between() -> None:
    plans = [
        [(_OPEN, ("run-1", "agent")), (_OWN, (1, "agent"))],
        [(_OPEN, ("run-2", "agent")), (_OWN, (2, "agent"))],
        [(_OWN_AS_STREAM, (3, "run-1"))],
    ]
    assert [len(s) for s in _segments(plans)] == [4, 1]


def test_a_stream_read_and_then_written_is_cut_between() -> None:
    plans = [[(_OWN_AS_STREAM, (1, "cond-1"))], [(_INHERIT, ("cond-1", "task-1"))]]
    assert len(_segments(plans)) == 2


def test_a_stream_written_twice_is_cut_between() -> None:
    plans = [[(_OPEN, ("task-1", "a"))], [(_OPEN, ("task-1", "b"))]]
    assert len(_segments(plans)) == 2


def test_statements_keep_their_order() -> None:
    plans = [
        [(_OPEN, ("run-1", "agent")), (_OWN, (1, "agent"))],
        [(_OWN_AS_STREAM, (2, "run-1"))],
        [(_OWN, (3, "agent"))],
    ]
    assert [s for segment in _segments(plans) for s in segment] == [s for p in plans for s in p]
