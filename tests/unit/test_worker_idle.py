"""An idle worker looks again at once for work that fell due, but never spins on held work."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.worker.idle import idle_wait

POLL = 1.0


def test_nothing_queued_waits_the_poll_interval() -> None:
    assert idle_wait(None, False, POLL) == (POLL, False)


def test_future_work_is_waited_for_until_due_at_most_the_poll_interval() -> None:
    assert idle_wait(0.25, False, POLL) == (0.25, False)
    assert idle_wait(30.0, True, POLL) == (POLL, False)


def test_work_that_fell_due_after_the_lease_is_leased_again_at_once() -> None:
    assert idle_wait(-0.001, False, POLL) == (0.0, True)


def test_ready_work_still_not_leased_on_the_second_look_waits_for_a_wake_up() -> None:
    assert idle_wait(-0.5, True, POLL) == (POLL, False)


@given(st.lists(st.one_of(st.none(), st.floats(-10, 10)), min_size=1, max_size=50))
def test_never_two_immediate_looks_in_a_row(looks: list[float | None]) -> None:
    looked_again = False
    previous_wait = POLL
    for seconds in looks:
        wait, looked_again = idle_wait(seconds, looked_again, POLL)
        assert 0.0 <= wait <= POLL
        if seconds is not None and seconds <= 0:
            assert wait > 0 or previous_wait > 0
        previous_wait = wait
