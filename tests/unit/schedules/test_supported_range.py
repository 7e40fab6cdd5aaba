"""Instants at the calendar's ends, and previews with wall-time ``after`` and ``dtstart``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.schedules import (
    ScheduleError,
    compile_schedule,
    next_occurrences,
    preview_occurrences,
    preview_request,
)

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
RANGE = "is outside the supported range (0001-01-02T00:00:00Z to before 9999-12-31T00:00:00Z)"


def refusal(kind: str, expr: str, zone: str = "UTC", dtstart: datetime | None = None) -> str:
    with pytest.raises(ScheduleError) as info:
        compile_schedule(kind, expr, zone, dtstart=dtstart, now=None)
    return str(info.value)


@pytest.mark.parametrize(
    ("expr", "zone", "shown"),
    [
        ("9999-12-31T23:59:59-12:00", "UTC", "9999-12-31T23:59:59-12:00"),
        ("0001-01-01T00:00:00+14:00", "UTC", "0001-01-01T00:00:00+14:00"),
        ("9999-12-31T23:59:59Z", "Pacific/Kiritimati", "9999-12-31T23:59:59+00:00"),
        ("9999-12-31T23:59:59", "America/New_York", "9999-12-31T23:59:59 in America/New_York"),
        ("0001-01-01T00:00:00", "Pacific/Kiritimati", "0001-01-01T00:00:00 in Pacific/Kiritimati"),
        ("9999-12-31T00:00:00Z", "UTC", "9999-12-31T00:00:00+00:00"),
        ("0001-01-01T23:59:59Z", "UTC", "0001-01-01T23:59:59+00:00"),
    ],
)
def test_once_outside_the_range_names_schedule_expr(expr: str, zone: str, shown: str) -> None:
    assert refusal("once", expr, zone) == f"schedule_expr: {shown} {RANGE}"


@pytest.mark.parametrize(
    ("expr", "zone", "expected"),
    [
        ("0001-01-02T00:00:00Z", "America/New_York", "0001-01-01T19:03:58-04:56:02"),
        ("9999-12-30T23:59:59Z", "Pacific/Kiritimati", "9999-12-31T13:59:59+14:00"),
        ("9999-12-30T23:59:59.999999Z", "UTC", "9999-12-30T23:59:59.999999+00:00"),
    ],
)
def test_once_at_the_ends_of_the_range_compiles(expr: str, zone: str, expected: str) -> None:
    schedule = compile_schedule("once", expr, zone, dtstart=None, now=None)
    (found,) = next_occurrences(schedule, datetime(1, 1, 2, tzinfo=UTC) - timedelta(seconds=1), 2)
    assert found.isoformat() == expected


@pytest.mark.parametrize(
    ("expr", "dtstart", "message"),
    [
        (
            "FREQ=DAILY",
            datetime(1, 1, 1, tzinfo=UTC),
            f"dtstart: 0001-01-01T00:00:00+00:00 {RANGE}",
        ),
        (
            "FREQ=DAILY",
            datetime(9999, 12, 31, 12),
            f"dtstart: 9999-12-31T12:00:00 in America/New_York {RANGE}",
        ),
        (
            "DTSTART:00010101T000000Z\nRRULE:FREQ=DAILY",
            None,
            f"schedule_expr: 0001-01-01T00:00:00 in UTC {RANGE}",
        ),
        (
            "DTSTART;TZID=Pacific/Kiritimati:00010101T120000\nRRULE:FREQ=DAILY",
            None,
            f"schedule_expr: 0001-01-01T12:00:00 in Pacific/Kiritimati {RANGE}",
        ),
        (
            "DTSTART:20260101T000000Z\nRDATE:99991231T235959Z",
            None,
            f"schedule_expr: 9999-12-31T23:59:59 in UTC {RANGE}",
        ),
        (
            "DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY\nEXDATE;TZID=Etc/GMT+12:99991231T000000",
            None,
            f"schedule_expr: 9999-12-31T00:00:00 in Etc/GMT+12 {RANGE}",
        ),
    ],
)
def test_rrule_instants_outside_the_range_name_their_field(
    expr: str, dtstart: datetime | None, message: str
) -> None:
    assert refusal("rrule", expr, "America/New_York", dtstart) == message


def test_an_until_past_the_calendar_means_no_end() -> None:
    text = "DTSTART;TZID=America/New_York:20260105T090000\nRRULE:FREQ=DAILY;UNTIL=99991231T235959"
    schedule = compile_schedule("rrule", text, "America/New_York", dtstart=None, now=NOW)
    found = next_occurrences(schedule, NOW, 2)
    assert [o.isoformat() for o in found] == [
        "2026-06-01T09:00:00-04:00",
        "2026-06-02T09:00:00-04:00",
    ]


def test_an_until_before_the_calendar_ends_everything() -> None:
    text = "DTSTART:00010102T000000Z\nRRULE:FREQ=DAILY;UNTIL=00010101T000000"
    expected = "RRULE produces no occurrences at all (check UNTIL, COUNT and EXDATE)"
    assert refusal("rrule", text, "Pacific/Kiritimati") == f"schedule_expr: {expected}"


@pytest.mark.parametrize("kind", ["cron", "rrule"])
def test_occurrences_stop_at_the_end_of_the_range(kind: str) -> None:
    expr = "0 12 * * *" if kind == "cron" else "FREQ=DAILY;BYHOUR=12"
    dtstart = datetime(9999, 12, 1, 12)
    schedule = compile_schedule(kind, expr, "Pacific/Kiritimati", dtstart=dtstart, now=NOW)
    found = next_occurrences(schedule, datetime(9999, 12, 28, tzinfo=UTC), 10)
    # 9999-12-31T12:00+14:00 is 9999-12-30T22:00Z, the last noon before the range ends.
    assert [o.isoformat() for o in found] == [
        "9999-12-29T12:00:00+14:00",
        "9999-12-30T12:00:00+14:00",
        "9999-12-31T12:00:00+14:00",
    ]


NY, KOLKATA, CHISINAU = "America/New_York", "Asia/Kolkata", "Europe/Chisinau"
WALL_AFTER = [
    ("cron", "0 0 * * *", "UTC", "2026-12-06T10:00:00", ["2026-12-07T00:00:00+00:00"]),
    # 20:00 in New York, not 20:00 UTC (15:00 in New York, before that day's 17:00)
    ("cron", "0 17 * * *", NY, "2026-12-06T20:00:00", ["2026-12-07T17:00:00-05:00"]),
    # 02:30 does not exist that day; it is read with the offset before the gap (03:30 EDT)
    ("cron", "*/15 * * * *", NY, "2026-03-08T02:30:00", ["2026-03-08T03:45:00-04:00"]),
    ("rrule", "FREQ=DAILY;BYHOUR=9", KOLKATA, "2026-12-06T09:30:00", ["2026-12-07T09:00:00+05:30"]),
    ("once", "2026-12-24T18:00:00", CHISINAU, "2026-12-24T17:59:59", ["2026-12-24T18:00:00+02:00"]),
    ("once", "2026-12-24T18:00:00", CHISINAU, "2026-12-24T18:00:00", []),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "expr", "zone", "after", "expected"), WALL_AFTER)
def test_preview_after_without_offset_is_wall_time(
    kind: str, expr: str, zone: str, after: str, expected: list[str]
) -> None:
    found = preview_occurrences(
        kind,
        expr,
        zone,
        after=datetime.fromisoformat(after),
        dtstart=datetime(2026, 1, 1),
        count=1,
        now=NOW,
    )
    assert [o.isoformat() for o in found] == expected
    line = {"schedule_kind": kind, "schedule_expr": expr, "timezone": zone, "after": after}
    line |= {"dtstart": "2026-01-01T00:00:00", "count": 1}
    assert preview_request(line, NOW) == {"occurrences": expected}


def test_preview_dtstart_without_offset_keeps_its_wall_time() -> None:
    # A bare rule anchored at a skipped 02:30 fires at 02:30 on the days that have one (the
    # CLI used to read it as 03:30 first, moving the whole rule an hour).
    line = {
        "schedule_kind": "rrule",
        "schedule_expr": "FREQ=DAILY",
        "timezone": "America/New_York",
        "dtstart": "2026-03-08T02:30:00",
        "after": "2026-03-08T00:00:00",
        "count": 2,
    }
    expected = ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"]
    assert preview_request(line, NOW) == {"occurrences": expected}


@pytest.mark.parametrize(
    ("after", "dtstart", "message"),
    [
        (datetime(9999, 12, 31, 23), None, f"after: 9999-12-31T23:00:00 in UTC {RANGE}"),
        (datetime(1, 1, 1, tzinfo=UTC), None, f"after: 0001-01-01T00:00:00+00:00 {RANGE}"),
        (None, datetime(1, 1, 1, tzinfo=UTC), f"dtstart: 0001-01-01T00:00:00+00:00 {RANGE}"),
    ],
)
def test_preview_names_the_field_out_of_range(
    after: datetime | None, dtstart: datetime | None, message: str
) -> None:
    with pytest.raises(ScheduleError) as info:
        preview_occurrences(
            "rrule", "FREQ=DAILY", "UTC", after=after, dtstart=dtstart, count=2, now=NOW
        )
    assert str(info.value) == message
