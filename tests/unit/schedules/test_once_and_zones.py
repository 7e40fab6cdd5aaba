"""One-shot schedules, zone validation, DTSTART anchoring, errors and preview lines."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.schedules import (
    ScheduleError,
    anchor_dtstart,
    compile_schedule,
    next_occurrences,
    preview_request,
    validate_timezone,
)

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def once(expr: str, zone: str = "UTC", now: datetime = NOW) -> datetime | None:
    schedule = compile_schedule("once", expr, zone, dtstart=None, now=now)
    return schedule.next_after(now - timedelta(minutes=5))


@pytest.mark.parametrize(
    ("expr", "zone", "expected"),
    [
        ("2026-12-01T09:00:00+02:00", "Europe/London", "2026-12-01T07:00:00+00:00"),
        ("2026-12-01T09:00:00Z", "America/New_York", "2026-12-01T04:00:00-05:00"),
        ("2026-12-01T09:00:00", "America/New_York", "2026-12-01T09:00:00-05:00"),
        ("2026-07-01T09:00:00", "Europe/Chisinau", "2026-07-01T09:00:00+03:00"),
        ("2026-12-01 09:00", "Asia/Kolkata", "2026-12-01T09:00:00+05:30"),
        ("  2026-12-01T09:00:00.250+00:00 ", "UTC", "2026-12-01T09:00:00.250000+00:00"),
    ],
)
def test_once_instant(expr: str, zone: str, expected: str) -> None:
    found = once(expr, zone)
    assert found is not None
    assert found.isoformat() == expected
    assert str(found.tzinfo) == zone


def test_once_fires_exactly_once() -> None:
    schedule = compile_schedule("once", "2026-12-01T09:00:00Z", "UTC", dtstart=None, now=NOW)
    found = next_occurrences(schedule, NOW, 5)
    assert [o.isoformat() for o in found] == ["2026-12-01T09:00:00+00:00"]
    assert schedule.next_after(found[0]) is None


@pytest.mark.parametrize("seconds_ago", [61, 3600, 86400 * 400])
def test_once_more_than_60s_in_the_past_is_rejected(seconds_ago: int) -> None:
    expr = (NOW - timedelta(seconds=seconds_ago)).isoformat()
    with pytest.raises(ScheduleError) as info:
        compile_schedule("once", expr, "UTC", dtstart=None, now=NOW)
    assert info.value.field == "schedule_expr"
    assert info.value.reason == f"{expr} is in the past"


@pytest.mark.parametrize("seconds_ago", [0, 1, 30, 60])
def test_once_within_60s_is_accepted_and_due(seconds_ago: int) -> None:
    at = NOW - timedelta(seconds=seconds_ago)
    schedule = compile_schedule("once", at.isoformat(), "UTC", dtstart=None, now=NOW)
    # Decision: next_after is strictly-after like every schedule; a task seeded from a
    # point before the instant gets it as next_run_at (already due, so it fires at once).
    assert schedule.next_after(at - timedelta(seconds=1)) == at
    assert schedule.next_after(at) is None


def test_once_local_time_past_check_uses_the_zone() -> None:
    # 13:30 in Kolkata is 08:00 UTC, hours before NOW.
    with pytest.raises(ScheduleError, match="is in the past"):
        compile_schedule("once", "2026-06-01T13:30:00", "Asia/Kolkata", dtstart=None, now=NOW)


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("tomorrow", "'tomorrow' is not an ISO-8601 date-time"),
        ("2026-13-01T00:00:00", "'2026-13-01T00:00:00' is not an ISO-8601 date-time"),
        ("", "'' is not an ISO-8601 date-time"),
        ("2026-12-01", "'2026-12-01' needs a time of day, e.g. 2026-12-01T09:00:00"),
    ],
)
def test_once_garbage_is_rejected(expr: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as info:
        compile_schedule("once", expr, "UTC", dtstart=None, now=NOW)
    assert (info.value.field, info.value.reason) == ("schedule_expr", reason)


@pytest.mark.parametrize(
    "name", ["UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "Asia/Kolkata", "US/Eastern"]
)
def test_valid_zones(name: str) -> None:
    zone = validate_timezone(name)
    assert isinstance(zone, ZoneInfo)
    assert str(zone) == name
    assert validate_timezone(name) is zone  # cached: one tzinfo object per name


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus_Mons",
        "",
        "utc",
        "Europe/London ",
        "America/New York",
        "../../etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "Europe",
        "zone.tab",
        "America/__init__",
        "EST+5",
    ],
)
def test_invalid_zones(name: str) -> None:
    with pytest.raises(ScheduleError) as info:
        validate_timezone(name)
    assert info.value.field == "timezone"
    with pytest.raises(ScheduleError) as compiled:
        compile_schedule("cron", "* * * * *", name, dtstart=None, now=NOW)
    assert compiled.value.field == "timezone"


def test_zone_is_pinned_to_the_tzdata_package() -> None:
    # tzdata 2025c moved Moldova to EU transition times (01:00 UTC); older OS copies differ.
    chisinau = validate_timezone("Europe/Chisinau")
    assert datetime(2026, 3, 29, 1, 0, tzinfo=UTC).astimezone(chisinau).hour == 4
    assert pickle.loads(pickle.dumps(chisinau)) is chisinau


def test_anchor_dtstart() -> None:
    now = datetime(2026, 3, 8, 7, 31, 45, 123456, tzinfo=UTC)
    anchored = anchor_dtstart(now, validate_timezone("America/New_York"))
    assert anchored.isoformat() == "2026-03-08T03:31:00-04:00"
    with pytest.raises(ValueError, match="timezone-aware"):
        anchor_dtstart(datetime(2026, 1, 1), validate_timezone("UTC"))


def test_bare_rrule_is_anchored_at_dtstart_and_never_drifts() -> None:
    zone = validate_timezone("Europe/London")
    created = datetime(2026, 3, 27, 7, 17, 39, tzinfo=UTC)
    dtstart = anchor_dtstart(created, zone)  # 07:17 wall time, stored with the task
    rule = "FREQ=HOURLY;INTERVAL=5"
    first = compile_schedule("rrule", rule, "Europe/London", dtstart=dtstart, now=created)
    later_now = created + timedelta(days=40)
    later = compile_schedule("rrule", rule, "Europe/London", dtstart=dtstart, now=later_now)
    probe = created + timedelta(days=30)
    assert next_occurrences(first, probe, 10) == next_occurrences(later, probe, 10)
    start = next_occurrences(first, dtstart - timedelta(seconds=1), 1)[0]
    assert start.isoformat() == "2026-03-27T07:17:00+00:00"
    # seconds are zeroed, so the anchor itself precedes creation; the next run is 12:17
    following = first.next_after(created)
    assert following is not None
    assert following.isoformat() == "2026-03-27T12:17:00+00:00"
    for found in next_occurrences(later, probe, 10):
        wall_hours = (found.replace(tzinfo=None) - dtstart.replace(tzinfo=None)) / timedelta(
            hours=1
        )
        assert found.minute == 17
        assert wall_hours % 5 == 0  # the phase is counted in wall time from DTSTART


def test_bare_rrule_needs_dtstart() -> None:
    with pytest.raises(ScheduleError) as info:
        compile_schedule("rrule", "FREQ=DAILY", "UTC", dtstart=None, now=NOW)
    assert info.value.field == "dtstart"
    with pytest.raises(ScheduleError) as prefixed:
        compile_schedule("rrule", "RRULE:FREQ=DAILY", "UTC", dtstart=None, now=NOW)
    assert prefixed.value.field == "dtstart"


def test_rrule_prefix_and_naive_dtstart() -> None:
    zone = validate_timezone("Europe/London")
    wall = datetime(2026, 6, 1, 9, 30)  # naive = wall time in the task's zone
    for expr in ("FREQ=DAILY;COUNT=2", "RRULE:FREQ=DAILY;COUNT=2", "rrule:freq=daily;count=2"):
        schedule = compile_schedule("rrule", expr, "Europe/London", dtstart=wall, now=NOW)
        found = next_occurrences(schedule, NOW - timedelta(days=1), 5)
        assert found == [datetime(2026, 6, d, 9, 30, tzinfo=zone) for d in (1, 2)]


def test_full_text_dtstart_wins_and_results_use_the_task_zone() -> None:
    text = "DTSTART;TZID=Europe/Brussels:20260105T090000\nRRULE:FREQ=WEEKLY;COUNT=2"
    ignored = datetime(2020, 1, 1, tzinfo=UTC)
    schedule = compile_schedule("rrule", text, "Asia/Kolkata", dtstart=ignored, now=NOW)
    found = next_occurrences(schedule, datetime(2026, 1, 1, tzinfo=UTC), 5)
    assert [o.isoformat() for o in found] == [
        "2026-01-05T13:30:00+05:30",
        "2026-01-12T13:30:00+05:30",
    ]


def test_floating_dtstart_is_wall_time_in_the_task_zone() -> None:
    text = "DTSTART:20260105T090000\nRRULE:FREQ=DAILY;COUNT=1"
    schedule = compile_schedule("rrule", text, "America/New_York", dtstart=None, now=NOW)
    (found,) = next_occurrences(schedule, datetime(2026, 1, 1, tzinfo=UTC), 5)
    assert found.isoformat() == "2026-01-05T09:00:00-05:00"


def test_schedule_error_shape() -> None:
    error = ScheduleError("timezone", "unknown time zone 'X'")
    assert isinstance(error, ValueError)
    assert str(error) == "timezone: unknown time zone 'X'"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.field, copy.reason, str(copy)) == (error.field, error.reason, str(error))


def test_unknown_kind() -> None:
    with pytest.raises(ScheduleError) as info:
        compile_schedule("interval", "5m", "UTC", dtstart=None, now=NOW)
    assert info.value.field == "schedule_kind"


def test_naive_after_is_a_programming_error() -> None:
    schedule = compile_schedule("cron", "* * * * *", "UTC", dtstart=None, now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_after(datetime(2026, 1, 1))


PREVIEW_GOOD = [
    (
        {
            "schedule_kind": "cron",
            "schedule_expr": "30 2 * * *",
            "timezone": "America/New_York",
            "after": "2026-03-07T12:00:00Z",
            "count": 2,
        },
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
    ),
    (
        {
            "schedule_kind": "rrule",
            "schedule_expr": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0",
            "timezone": "Europe/London",
            "count": 2,
        },
        ["2026-06-02T09:00:00+01:00", "2026-06-03T09:00:00+01:00"],
    ),
    (
        {
            "schedule_kind": "rrule",
            "schedule_expr": "FREQ=DAILY",
            "timezone": "UTC",
            "dtstart": "2026-01-01T07:00:00",
            "count": 1,
        },
        ["2026-06-02T07:00:00+00:00"],
    ),
    (
        {"schedule_kind": "once", "schedule_expr": "2026-06-01T12:00:30", "timezone": "UTC"},
        ["2026-06-01T12:00:30+00:00"],
    ),
    (
        {
            "schedule_kind": "cron",
            "schedule_expr": "0 9 * * *",
            "timezone": "Asia/Kolkata",
            "after": "2026-06-01T08:00:00",
        },
        [f"2026-06-{d:02d}T09:00:00+05:30" for d in range(1, 11)],
    ),
    (
        {
            "schedule_kind": "once",
            "schedule_expr": "2026-06-01T12:00:00Z",
            "timezone": "UTC",
            "after": "2026-06-01T12:00:00Z",
        },
        [],
    ),
]


@pytest.mark.parametrize(("line", "expected"), PREVIEW_GOOD)
def test_preview_good_lines(line: dict[str, object], expected: list[str]) -> None:
    assert preview_request(line, NOW) == {"occurrences": expected}


PREVIEW_BAD = [
    (
        {"schedule_kind": "cron", "schedule_expr": "61 * * * *", "timezone": "UTC"},
        "schedule_expr: minute value 61 is out of range 0-59",
    ),
    (
        {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": "Mars/Base"},
        "timezone: unknown time zone 'Mars/Base'",
    ),
    ({"schedule_kind": "cron"}, "schedule_expr: missing or not a string"),
    (
        {"schedule_kind": "cron", "schedule_expr": 5, "timezone": "UTC"},
        "schedule_expr: missing or not a string",
    ),
    (
        {"schedule_kind": None, "schedule_expr": "* * * * *", "timezone": "UTC"},
        "schedule_kind: missing or not a string",
    ),
    (
        {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": ["UTC"]},
        "timezone: missing or not a string",
    ),
    (
        {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": "UTC", "after": "soon"},
        "after: 'soon' is not an ISO-8601 date-time",
    ),
    (
        {
            "schedule_kind": "cron",
            "schedule_expr": "* * * * *",
            "timezone": "UTC",
            "after": 1700000000,
        },
        "after: must be an ISO-8601 string",
    ),
    (
        {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": "UTC", "count": True},
        "count: must be an integer from 1 to 1000",
    ),
    (
        {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": "UTC", "count": "3"},
        "count: must be an integer from 1 to 1000",
    ),
    (
        {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": "UTC", "count": 0},
        "count: must be an integer from 1 to 1000",
    ),
    (
        {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": "UTC", "count": 10**9},
        "count: must be an integer from 1 to 1000",
    ),
    (
        {"schedule_kind": "cron", "schedule_expr": "* * * * *", "timezone": "UTC", "colour": "red"},
        "unknown key(s): colour",
    ),
    (
        {"kind": "cron", "expr": "* * * * *", "tz": "UTC"},
        "kind: renamed schedule_kind; expr: renamed schedule_expr; tz: renamed timezone",
    ),
    (
        {"schedule_kind": "weekly", "schedule_expr": "MO", "timezone": "UTC"},
        "schedule_kind: unknown kind 'weekly' (expected cron, rrule or once)",
    ),
    (
        {"schedule_kind": "rrule", "schedule_expr": "FREQ=SOMETIMES", "timezone": "UTC"},
        "schedule_expr: RRULE: unknown FREQ 'SOMETIMES'",
    ),
    (
        {"schedule_kind": "once", "schedule_expr": "2020-01-01T00:00:00Z", "timezone": "UTC"},
        "schedule_expr: 2020-01-01T00:00:00Z is in the past",
    ),
    (
        {
            "schedule_kind": "cron",
            "schedule_expr": "* * * * *",
            "timezone": "America/Adak",
            "after": "9999-12-31T23:59:00",
        },
        "after: 9999-12-31T23:59:00 in America/Adak is outside the supported range"
        " (0001-01-02T00:00:00Z to before 9999-12-31T00:00:00Z)",
    ),
    ([], "request must be a JSON object"),
    ("cron", "request must be a JSON object"),
    (None, "request must be a JSON object"),
    ({1: 2}, "unknown key(s): 1"),
]


@pytest.mark.parametrize(("line", "message"), PREVIEW_BAD)
def test_preview_bad_lines_never_raise(line: object, message: str) -> None:
    assert preview_request(line, NOW) == {"error": message}
