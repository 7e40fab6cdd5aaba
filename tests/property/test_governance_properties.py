"""Properties of token buckets and quiet-hour windows over random inputs (DST zones included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.events import QuietWindow
from domain.quiet_hours import covers_whole_day, parse_clock, quiet_until
from domain.rate_limits import Bucket, RateLimit, next_slot, take
from domain.schedules import validate_timezone

SETTINGS = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Chisinau",
    "Australia/Lord_Howe",
    "Europe/London",
    "Antarctica/Troll",
    "America/St_Johns",
    "Pacific/Chatham",
]

limits = st.builds(
    RateLimit,
    rate=st.floats(min_value=0.01, max_value=1000, allow_nan=False),
    burst=st.integers(min_value=1, max_value=100),
)
gaps = st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1, max_size=200)


@SETTINGS
@given(limits, gaps)
def test_a_bucket_never_allows_more_than_burst_plus_what_time_refilled(
    limit: RateLimit, waits: list[float]
) -> None:
    bucket: Bucket | None = None
    now, allowed = 0.0, 0
    for wait in waits:
        now += wait
        taken = take(bucket, now, limit)
        bucket = taken.bucket
        allowed += taken.allowed
        assert 0 <= taken.bucket.tokens <= limit.burst
        assert allowed <= limit.burst + now * limit.rate + 1e-6


@SETTINGS
@given(limits, gaps)
def test_waiting_the_retry_after_is_always_enough(limit: RateLimit, waits: list[float]) -> None:
    bucket: Bucket | None = None
    now = 0.0
    for wait in waits:
        now += wait
        taken = take(bucket, now, limit)
        bucket = taken.bucket
        if not taken.allowed:
            assert taken.retry_after > 0
            later = take(bucket, now + taken.retry_after + 1e-9, limit)
            assert later.allowed


@SETTINGS
@given(limits, st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_a_clock_going_backwards_refills_nothing(limit: RateLimit, at: float) -> None:
    empty = Bucket(0.0, at)
    assert not take(empty, at - 10, limit).allowed


clocks = st.builds(
    lambda h, m, s: f"{h:02d}:{m:02d}" + (f":{s:02d}" if s else ""),
    st.integers(0, 23),
    st.sampled_from([0, 15, 30, 45, 59]),
    st.sampled_from([0, 0, 0, 30]),
)
windows = st.lists(
    st.builds(lambda a, b: QuietWindow(start=a, end=b), clocks, clocks).filter(
        lambda w: parse_clock(w.start, "s") != parse_clock(w.end, "e")
    ),
    min_size=1,
    max_size=3,
).filter(lambda ws: not covers_whole_day(ws))
# fmt: off
# Instants around the DST changes of 2026 in the zones above (and anywhere else in the year).
instants = st.one_of(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)),
    st.sampled_from([datetime(2026, 3, 8, 6), datetime(2026, 3, 29, 0), datetime(2026, 4, 5, 14),
                     datetime(2026, 10, 25, 0), datetime(2026, 11, 1, 5),
                     datetime(2026, 9, 27, 13)]).flatmap(
        lambda base: st.integers(-6 * 3600, 6 * 3600).map(lambda s: base + timedelta(seconds=s))
    ),
).map(lambda naive: naive.replace(tzinfo=UTC))
# fmt: on


def _quiet(at: datetime, ws: list[QuietWindow], zone: ZoneInfo) -> bool:
    wall = at.astimezone(zone).time().replace(tzinfo=None)
    for w in ws:
        start, end = parse_clock(w.start, "s"), parse_clock(w.end, "e")
        inside = start <= wall < end if start < end else wall >= start or wall < end
        if inside:
            return True
    return False


@SETTINGS
@given(instants, windows, st.sampled_from(ZONES))
# The day's only free half hour (02:30-03:00) falls in New York's spring-forward gap, so the
# quiet hours end at the next day's: 26 h 0 min 1 s later (found by hypothesis).
@example(
    datetime(2026, 3, 8, 4, 29, 59, tzinfo=UTC),
    [QuietWindow(start="03:00", end="02:30")],
    "America/New_York",
)
def test_quiet_hours_end_at_the_first_instant_outside_every_window(
    now: datetime, ws: list[QuietWindow], zone_name: str
) -> None:
    zone = validate_timezone(zone_name)
    until = quiet_until(now, ws, zone)
    if until is None:
        assert not _quiet(now, ws, zone)
        return
    assert _quiet(now, ws, zone)
    assert until > now
    # At most a day and the window's own length, plus the day a gap in the wall clock (a
    # change to summer time) swallowed every free instant of.
    assert until - now <= timedelta(hours=50)
    assert not _quiet(until, ws, zone)
    # Quiet all the way: every instant from now to the end is inside some window.
    span = until - now
    for step in range(1, 40):
        assert _quiet(now + span * step / 40, ws, zone), now + span * step / 40
    assert _quiet(until - timedelta(milliseconds=1), ws, zone)


@SETTINGS
@given(
    st.integers(min_value=1, max_value=5),
    st.floats(min_value=0.1, max_value=10, allow_nan=False),
    st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), min_size=1, max_size=60),
)
def test_tool_call_slots_never_put_more_than_calls_in_a_window(
    calls: int, per: float, arrivals_gaps: list[float]
) -> None:
    slots: list[float] = []
    now = 0.0
    for gap in arrivals_gaps:
        now += gap
        # Callers may forget slots older than a window: the answer must not change.
        kept = [s for s in slots if s >= now - per]
        slot = next_slot(kept, now, calls, per)
        assert slot == next_slot(slots, now, calls, per)
        assert slot >= now
        assert not slots or slot >= slots[-1]
        # As early as allowed: now, or exactly one window after the call `calls` back.
        assert slot == now or slot == slots[-calls] + per
        slots.append(slot)
    for earlier, later in zip(slots, slots[calls:], strict=False):
        assert later - earlier >= per - 1e-9
