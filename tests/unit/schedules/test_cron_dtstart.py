"""A cron schedule with a dtstart fires from that instant on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.schedules.factory import compile_schedule

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def test_a_cron_task_with_a_dtstart_first_fires_on_or_after_it() -> None:
    start = datetime(2028, 1, 1)  # wall time in the task's zone
    schedule = compile_schedule("cron", "0 8 * * *", "Europe/Chisinau", dtstart=start, now=NOW)
    first = schedule.next_after(NOW)
    assert first is not None
    assert first.isoformat() == "2028-01-01T08:00:00+02:00"
    on_the_dot = compile_schedule(
        "cron", "0 8 * * *", "Europe/Chisinau", dtstart=datetime(2028, 1, 1, 8), now=NOW
    )
    assert on_the_dot.next_after(NOW) == first  # the start itself may be an occurrence


@given(
    offset_hours=st.integers(-48, 24 * 400),
    after_hours=st.integers(-48, 24 * 400),
)
def test_a_cron_dtstart_only_removes_occurrences_before_it(
    offset_hours: int, after_hours: int
) -> None:
    start = NOW + timedelta(hours=offset_hours, minutes=7)
    after = NOW + timedelta(hours=after_hours)
    plain = compile_schedule("cron", "*/15 * * * *", "America/New_York", dtstart=None, now=NOW)
    started = compile_schedule("cron", "*/15 * * * *", "America/New_York", dtstart=start, now=NOW)
    expected = plain.next_after(max(after, start - timedelta(microseconds=1)))
    assert started.next_after(after) == expected
    found = started.next_after(after)
    assert found is not None
    assert found >= start
    assert found > after
