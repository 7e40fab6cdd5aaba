"""Properties of cron and RRULE schedules over random expressions, zones and instants."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from domain.schedules import ScheduleError, compile_schedule, next_occurrences, validate_timezone

ZONES = [
    "UTC",
    "Europe/Chisinau",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Pacific/Chatham",
    "Asia/Tehran",
    "Europe/Dublin",
    "Pacific/Apia",  # skipped the whole of 2011-12-30
    "Antarctica/Troll",  # two-hour DST jumps
    "America/St_Johns",
]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
TAKE = 20
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

zones = st.sampled_from(ZONES).map(validate_timezone)
instants = st.datetimes(datetime(2000, 1, 1), datetime(2037, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


# --- cron ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CronCase:
    """A generated expression with the value sets each field was built to select."""

    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    dom_star: bool
    dow_star: bool
    fixed: bool

    def matches(self, wall: datetime) -> bool:
        weekday = wall.isoweekday() % 7
        dom, dow = wall.day in self.days, weekday in self.weekdays
        day_ok = (dom and dow) if self.dom_star or self.dow_star else (dom or dow)
        return (
            day_ok
            and wall.second in self.seconds
            and wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.month in self.months
        )


@st.composite
def cron_item(
    draw: st.DrawFn, low: int, high: int, names: tuple[str, ...] | None
) -> tuple[str, set[int]]:
    def render(value: int) -> str:
        index = value if low == 0 else value - 1  # day-of-week names start at SUN = 0
        if names and index < len(names) and draw(st.booleans()):
            return names[index]
        return str(value)  # 7 (Sunday again) has no name of its own

    first = draw(st.integers(low, high))
    last = draw(st.integers(first, high))
    step = draw(st.integers(1, max(1, high - low)))
    shape = draw(st.sampled_from(["value", "range", "range_step", "start_step"]))
    if shape == "value":
        return render(first), {first}
    if shape == "range":
        return f"{render(first)}-{render(last)}", set(range(first, last + 1))
    if shape == "range_step":
        return f"{first}-{last}/{step}", set(range(first, last + 1, step))
    return f"{first}/{step}", set(range(first, high + 1, step))


@st.composite
def cron_field(
    draw: st.DrawFn, low: int, high: int, names: tuple[str, ...] | None = None
) -> tuple[str, set[int]]:
    kind = draw(st.sampled_from(["star", "star_step", "list"]))
    if kind == "star":
        return "*", set(range(low, high + 1))
    if kind == "star_step":
        step = draw(st.integers(1, high - low + 1))
        return f"*/{step}", set(range(low, high + 1, step))
    items = draw(st.lists(cron_item(low, high, names), min_size=1, max_size=3))
    return ",".join(t for t, _ in items), set().union(*(v for _, v in items))


@st.composite
def cron_cases(draw: st.DrawFn) -> CronCase:
    with_seconds = draw(st.booleans())
    second = draw(cron_field(0, 59)) if with_seconds else ("0", {0})
    minute, hour = draw(cron_field(0, 59)), draw(cron_field(0, 23))
    day, month = draw(cron_field(1, 31)), draw(cron_field(1, 12, MONTHS))
    weekday = draw(cron_field(0, 7, DAYS))
    fields = [second, minute, hour, day, month, weekday][0 if with_seconds else 1 :]
    case = CronCase(
        text=" ".join(text for text, _ in fields),
        seconds=frozenset(second[1]),
        minutes=frozenset(minute[1]),
        hours=frozenset(hour[1]),
        days=frozenset(day[1]),
        months=frozenset(month[1]),
        weekdays=frozenset(v % 7 for v in weekday[1]),
        dom_star=day[0].startswith("*"),
        dow_star=weekday[0].startswith("*"),
        fixed=not (minute[0].startswith("*") or hour[0].startswith("*")),
    )
    anded = case.dom_star or case.dow_star
    assume(not anded or any(d <= MAX_DAYS[m - 1] for d in case.days for m in case.months))
    return case


def offset_at(instant: datetime, zone: ZoneInfo) -> timedelta:
    value = instant.astimezone(zone).utcoffset()
    assert value is not None
    return value


def is_real_wall_time(found: datetime, zone: ZoneInfo) -> bool:
    """Reading the result's wall time back in the zone gives the same instant."""
    wall = found.replace(tzinfo=None)
    return wall.replace(tzinfo=zone, fold=found.fold).astimezone(UTC) == found.astimezone(UTC)


def skipped_walls(transition: datetime, zone: ZoneInfo) -> list[datetime]:
    """Whole-second wall times skipped by a forward jump at ``transition`` (empty if none)."""
    before = offset_at(transition - timedelta(seconds=1), zone)
    after = offset_at(transition, zone)
    start = (transition + before).replace(tzinfo=None)
    return [start + timedelta(seconds=s) for s in range(int((after - before).total_seconds()))]


def gap_contains_match(case: CronCase, transition: datetime, zone: ZoneInfo) -> bool:
    return any(case.matches(wall) for wall in skipped_walls(transition, zone))


def second_pass(instant: datetime, zone: ZoneInfo) -> bool:
    local = instant.astimezone(zone)
    wall = local.replace(tzinfo=None)
    return local.fold == 1 and zone.utcoffset(wall) != zone.utcoffset(wall.replace(fold=1))


@SETTINGS
@given(case=cron_cases(), zone=zones, after=instants)
def test_cron_occurrences(case: CronCase, zone: ZoneInfo, after: datetime) -> None:
    schedule = compile_schedule("cron", case.text, str(zone), dtstart=None, now=NOW)
    found = next_occurrences(schedule, after, TAKE)
    assert found, "a valid cron expression always fires again before year 9999"
    instants_ = [o.astimezone(UTC) for o in found]
    assert instants_[0] > after
    assert all(a < b for a, b in itertools.pairwise(instants_))
    for occurrence in found:
        assert occurrence.tzinfo is zone
        assert is_real_wall_time(occurrence, zone)
        if case.matches(occurrence.replace(tzinfo=None)):
            assert not (case.fixed and second_pass(occurrence, zone))
        else:
            # only a fixed-time job moved out of a gap to the first instant after the jump
            assert case.fixed
            assert gap_contains_match(case, occurrence.astimezone(UTC), zone)


@SETTINGS
@given(case=cron_cases(), zone=zones, after=instants)
def test_cron_skips_nothing_before_the_first_occurrence(
    case: CronCase, zone: ZoneInfo, after: datetime
) -> None:
    assume(case.seconds == {0})  # brute force at minute resolution
    schedule = compile_schedule("cron", case.text, str(zone), dtstart=None, now=NOW)
    first = schedule.next_after(after)
    assert first is not None
    probe = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = min(first.astimezone(UTC), probe + timedelta(hours=36))
    while probe < end:
        wall = probe.astimezone(zone).replace(tzinfo=None)
        regular = case.matches(wall) and not (case.fixed and second_pass(probe, zone))
        jumped = offset_at(probe - timedelta(minutes=1), zone) < offset_at(probe, zone)
        moved = case.fixed and jumped and gap_contains_match(case, probe, zone)
        assert not regular, f"missed {probe.astimezone(zone).isoformat()}"
        assert not moved, f"missed the gap firing at {probe.astimezone(zone).isoformat()}"
        probe += timedelta(minutes=1)


# --- rrule -----------------------------------------------------------------------------

FREQS = ["DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY"]
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class RuleCase:
    text: str
    freq: str
    interval: int
    byhour: frozenset[int]
    byminute: frozenset[int]
    byday: frozenset[int]  # 0 = Monday
    bymonth: frozenset[int]
    bymonthday: frozenset[int]


def subset(values: Sequence[int], max_size: int) -> st.SearchStrategy[frozenset[int]]:
    return st.frozensets(st.sampled_from(list(values)), max_size=max_size)


@st.composite
def rule_cases(draw: st.DrawFn) -> RuleCase:
    freq = draw(st.sampled_from(FREQS))
    interval = draw(st.integers(1, 3))
    byhour, byminute = draw(subset(range(24), 3)), draw(subset(range(60), 3))
    byday, bymonth = draw(subset(range(7), 3)), draw(subset(range(1, 13), 3))
    days = [*range(1, 29), *range(-28, 0)]  # never an impossible month-day
    bymonthday = draw(subset(days, 2)) if freq in ("MONTHLY", "YEARLY") else frozenset()
    parts = [f"FREQ={freq}"] + ([f"INTERVAL={interval}"] if interval > 1 else [])
    for name, values in (("BYHOUR", byhour), ("BYMINUTE", byminute), ("BYMONTH", bymonth)):
        if values:
            parts.append(f"{name}={','.join(map(str, sorted(values)))}")
    if byday:
        parts.append("BYDAY=" + ",".join(WEEKDAY_CODES[d] for d in sorted(byday)))
    if bymonthday:
        parts.append(f"BYMONTHDAY={','.join(map(str, sorted(bymonthday)))}")
    return RuleCase(";".join(parts), freq, interval, byhour, byminute, byday, bymonth, bymonthday)


def rule_matches(case: RuleCase, wall: datetime, start: datetime) -> bool:
    """Does a local wall time satisfy the rule's BY parts and DTSTART-derived defaults?"""
    hours = case.byhour or (frozenset() if case.freq == "HOURLY" else {start.hour})
    minutes = case.byminute or {start.minute}
    month_days = {d if d > 0 else _days_in_month(wall) + 1 + d for d in case.bymonthday}
    checks = [
        not hours or wall.hour in hours,
        wall.minute in minutes and wall.second == start.second,
        not case.byday or wall.weekday() in case.byday,
        not case.bymonth or wall.month in case.bymonth,
        not month_days or wall.day in month_days,
    ]
    no_dates = not (case.byday or case.bymonthday)
    if case.freq == "WEEKLY" and no_dates:
        checks.append(wall.weekday() == start.weekday())
    if case.freq in ("MONTHLY", "YEARLY") and no_dates:
        checks.append(wall.day == start.day)
    if case.freq == "YEARLY" and not case.bymonth and not case.byday:
        checks.append(wall.month == start.month)
    return all(checks)


def _days_in_month(wall: datetime) -> int:
    following = (wall.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (following - timedelta(days=1)).day


def gap_readings(found: datetime, zone: ZoneInfo) -> list[datetime]:
    """Nonexistent wall times that, read with the offset before their gap, give ``found``."""
    now_offset = offset_at(found, zone)
    readings = []
    for hours in range(1, 27):
        before = offset_at(found - timedelta(hours=hours), zone)
        if before < now_offset:
            wall = (found.astimezone(UTC) + before).replace(tzinfo=None)
            fold0, fold1 = zone.utcoffset(wall), zone.utcoffset(wall.replace(fold=1))
            if fold0 is not None and fold1 is not None and fold0 < fold1:
                readings.append(wall)
    return readings


@SETTINGS
@given(case=rule_cases(), zone=zones, start=instants, after=instants)
def test_rrule_occurrences(
    case: RuleCase, zone: ZoneInfo, start: datetime, after: datetime
) -> None:
    dtstart = start.astimezone(zone).replace(second=0, microsecond=0)
    try:
        schedule = compile_schedule("rrule", case.text, str(zone), dtstart=dtstart, now=NOW)
    except ScheduleError as error:
        assume("never" not in error.reason)  # e.g. HOURLY;INTERVAL=2;BYHOUR=<wrong parity>
        raise
    found = next_occurrences(schedule, after, TAKE)
    assert found, "an unbounded rule keeps producing occurrences"
    instants_ = [o.astimezone(UTC) for o in found]
    assert instants_[0] > after
    assert all(a < b for a, b in itertools.pairwise(instants_))
    start_wall = dtstart.replace(tzinfo=None)
    for occurrence in found:
        assert occurrence.tzinfo is zone
        assert is_real_wall_time(occurrence, zone)
        walls = [occurrence.replace(tzinfo=None), *gap_readings(occurrence, zone)]
        matching = [w for w in walls if rule_matches(case, w, start_wall) and w >= start_wall]
        assert matching, f"{occurrence.isoformat()} does not match {case.text}"
