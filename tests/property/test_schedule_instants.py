"""Any date-time a user can write, compiled or previewed: occurrences or a rule violation."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import TypeVar

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.errors import RuleViolation
from domain.events import TaskDefinition, TaskSnoozed
from domain.schedules import (
    compile_schedule,
    next_occurrences,
    preview_occurrences,
    validate_timezone,
)
from domain.schedules.zones import MAX_INSTANT, MIN_INSTANT
from domain.tasks import TaskState, decide_snooze

# The zones furthest from UTC (now and in their LMT days), and a few with DST.
ZONES = [
    "UTC",
    "Pacific/Kiritimati",  # +14
    "Etc/GMT+12",  # -12
    "Etc/GMT-14",
    "Asia/Manila",  # LMT -15:56 until 1844
    "America/Sitka",  # LMT +14:58 until 1867
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "Europe/Chisinau",
]
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
EPOCH = datetime(1, 1, 1)
WEST, EAST = timezone(timedelta(hours=-12)), timezone(timedelta(hours=14))
LAST_SECOND = datetime(9999, 12, 31, 23, 59, 59)

zone_names = st.sampled_from(ZONES)
offsets: st.SearchStrategy[tzinfo] = st.timedeltas(
    timedelta(hours=-23, minutes=-59), timedelta(hours=23, minutes=59)
).map(lambda delta: timezone(timedelta(minutes=delta // timedelta(minutes=1))))
written_zones = st.none() | st.just(UTC) | offsets | zone_names.map(validate_timezone)
edges = st.sampled_from(
    [
        datetime.min,
        datetime.max,
        MIN_INSTANT.replace(tzinfo=None),
        MAX_INSTANT.replace(tzinfo=None),
        MIN_INSTANT.replace(tzinfo=None) - timedelta(microseconds=1),
        MAX_INSTANT.replace(tzinfo=None) - timedelta(microseconds=1),
    ]
)
walls = st.one_of(st.datetimes(), edges, st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1)))
# Naive (a wall time), at a fixed offset, or in a zone: as a body can carry them.
date_times = st.builds(lambda wall, zone: wall.replace(tzinfo=zone), walls, written_zones)
RULES = [
    "FREQ=DAILY",
    "FREQ=WEEKLY;BYDAY=MO,FR;WKST=SU",
    "FREQ=MONTHLY;BYMONTHDAY=31",
    "FREQ=YEARLY;COUNT=3",
    "FREQ=HOURLY;INTERVAL=7",
]
CRONS = ["0 0 * * *", "*/30 * * * *", "30 2 * * 0", "0 12 31 12 *"]


def in_range(value: datetime, zone: str) -> bool:
    """Whether ``value`` (naive: wall time in ``zone``) is a supported instant, computed in
    timedeltas from year 1 so that no arithmetic can overflow."""
    if value.utcoffset() is None:
        offset = validate_timezone(zone).utcoffset(value.replace(fold=0))
    else:
        offset = value.utcoffset()
    assert offset is not None
    since = value.replace(tzinfo=None) - EPOCH - offset
    return (
        MIN_INSTANT.replace(tzinfo=None) - EPOCH <= since < MAX_INSTANT.replace(tzinfo=None) - EPOCH
    )


T = TypeVar("T")


def attempt(call: Callable[[], T]) -> T | RuleViolation:
    """What ``call`` returns, or the rule violation it raises; anything else fails the test."""
    try:
        return call()
    except RuleViolation as exc:
        return exc


def check_occurrences(found: list[datetime], after: datetime | None, zone: str) -> None:
    assert all(MIN_INSTANT <= o < MAX_INSTANT for o in found)
    assert all(str(o.tzinfo) == zone for o in found)
    assert all(a < b for a, b in itertools.pairwise(found))
    if after is not None and in_range(after, zone) and found and after.utcoffset() is not None:
        assert found[0] > after


@SETTINGS
@given(value=date_times, zone=zone_names)
# The one-shots of the bug report (each was an OverflowError, a 500 from the API).
@example(LAST_SECOND.replace(tzinfo=WEST), "UTC")
@example(datetime(1, 1, 1, tzinfo=EAST), "UTC")
@example(LAST_SECOND.replace(tzinfo=UTC), "Pacific/Kiritimati")
@example(LAST_SECOND, "America/New_York")
def test_a_one_shot_at_any_date_time_compiles_or_is_refused(value: datetime, zone: str) -> None:
    schedule = attempt(
        lambda: compile_schedule("once", value.isoformat(), zone, dtstart=None, now=None)
    )
    if isinstance(schedule, RuleViolation):
        assert schedule.field == "schedule_expr"
        assert not in_range(value, zone)
        return
    assert in_range(value, zone)
    found = next_occurrences(schedule, MIN_INSTANT - timedelta(seconds=1), 2)
    check_occurrences(found, None, zone)
    assert len(found) == 1


@SETTINGS
@given(dtstart=date_times, zone=zone_names, rule=st.sampled_from(RULES), after=date_times)
@example(datetime(1, 1, 1, tzinfo=UTC), "UTC", "FREQ=DAILY", NOW)
def test_a_rule_anchored_anywhere_compiles_or_is_refused(
    dtstart: datetime, zone: str, rule: str, after: datetime
) -> None:
    schedule = attempt(lambda: compile_schedule("rrule", rule, zone, dtstart=dtstart, now=None))
    if isinstance(schedule, RuleViolation):
        assert schedule.field in ("dtstart", "schedule_expr")
        if schedule.field == "dtstart":
            assert not in_range(dtstart, zone)
        return
    assert in_range(dtstart, zone)
    if after.utcoffset() is not None and in_range(after, zone):
        check_occurrences(next_occurrences(schedule, after, 5), after, zone)


@SETTINGS
@given(dtstart=date_times, zone=zone_names, rule=st.sampled_from(RULES))
def test_a_rule_text_with_any_dtstart_compiles_or_is_refused(
    dtstart: datetime, zone: str, rule: str
) -> None:
    wall = dtstart.replace(tzinfo=None)
    stamp = (
        f"{wall.year:04d}{wall.month:02d}{wall.day:02d}"
        f"T{wall.hour:02d}{wall.minute:02d}{wall.second:02d}"
    )
    text = f"DTSTART:{stamp}{'Z' if dtstart.tzinfo is UTC else ''}\nRRULE:{rule}"
    text += f"\nRDATE:{stamp}\nEXDATE;TZID={zone}:{stamp}"
    schedule = attempt(lambda: compile_schedule("rrule", text, zone, dtstart=None, now=None))
    if isinstance(schedule, RuleViolation):
        assert schedule.field == "schedule_expr"
        return
    check_occurrences(next_occurrences(schedule, MIN_INSTANT, 5), None, zone)


@SETTINGS
@given(
    kind=st.sampled_from(["cron", "rrule", "once"]),
    zone=zone_names,
    after=st.none() | date_times,
    dtstart=st.none() | date_times,
    once=date_times,
    rule=st.sampled_from(RULES),
    cron=st.sampled_from(CRONS),
)
@example("cron", "UTC", datetime(2026, 12, 6, 10), None, NOW, RULES[0], "0 0 * * *")
@example("rrule", "UTC", None, datetime(1, 1, 1, tzinfo=UTC), NOW, "FREQ=DAILY", CRONS[0])
@example("once", "UTC", LAST_SECOND, None, LAST_SECOND.replace(tzinfo=WEST), RULES[0], CRONS[0])
def test_previewing_any_date_times_gives_occurrences_or_a_rule_violation(
    kind: str,
    zone: str,
    after: datetime | None,
    dtstart: datetime | None,
    once: datetime,
    rule: str,
    cron: str,
) -> None:
    expr = {"cron": cron, "rrule": rule, "once": once.isoformat()}[kind]
    found = attempt(
        lambda: preview_occurrences(
            kind, expr, zone, after=after, dtstart=dtstart, count=5, now=NOW
        )
    )
    if isinstance(found, RuleViolation):
        assert found.field in ("after", "dtstart", "schedule_expr")
        if found.field == "after":
            assert after is not None
            assert not in_range(after, zone)
        return
    assert after is None or in_range(after, zone)
    check_occurrences(found, after, zone)


@SETTINGS
@given(until=date_times, zone=zone_names, due=st.datetimes(timezones=st.just(UTC)))
@example(datetime(2027, 1, 1), "America/New_York", NOW)
@example(LAST_SECOND.replace(tzinfo=WEST), "UTC", NOW)
@example(datetime(9999, 12, 30), "UTC", NOW)
def test_snoozing_until_any_date_time_is_decided_or_refused(
    until: datetime, zone: str, due: datetime
) -> None:
    definition = TaskDefinition(
        title="t", schedule_kind="cron", schedule_expr="0 9 * * *", timezone=zone
    )
    state = TaskState("t-1", definition, "active", due)
    events = attempt(lambda: decide_snooze(state, NOW, seconds=None, until=until))
    if isinstance(events, RuleViolation):
        assert events.field == "until"
        return
    assert in_range(until, zone)
    (snoozed,) = events
    assert isinstance(snoozed, TaskSnoozed)
    assert snoozed.until > NOW
    assert snoozed.until - due <= timedelta(days=365)


@SETTINGS
@given(seconds=st.integers(1, 31_536_000), due=st.datetimes(timezones=st.just(UTC)))
@example(31_536_000, datetime(9999, 12, 30, tzinfo=UTC))
def test_snoozing_any_occurrence_by_seconds_is_decided_or_refused(
    seconds: int, due: datetime
) -> None:
    definition = TaskDefinition(title="t", schedule_kind="cron", schedule_expr="0 9 * * *")
    state = TaskState("t-1", definition, "active", due)
    events = attempt(lambda: decide_snooze(state, NOW, seconds=seconds, until=None))
    if isinstance(events, RuleViolation):
        assert events.field == "seconds"
        return
    (snoozed,) = events
    assert isinstance(snoozed, TaskSnoozed)
    assert snoozed.until == due + timedelta(seconds=seconds) < MAX_INSTANT
