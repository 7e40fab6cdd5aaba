"""The DST policy, line by line, in five zones (30-minute Lord Howe and DST-free Kolkata too).

2026 transitions (tzdata package): New York gap 02:00-03:00 on 03-08, overlap 01:00-02:00
on 11-01; London gap 01:00-02:00 on 03-29, overlap 01:00-02:00 on 10-25; Chisinau gap
03:00-04:00 on 03-29, overlap 03:00-04:00 on 10-25; Lord Howe overlap 01:30-02:00 (+11:00 to
+10:30) on 04-05, gap 02:00-02:30 on 10-04. Kolkata has none.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.schedules import compile_schedule, next_occurrences, validate_timezone

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NY, LONDON, CHISINAU = "America/New_York", "Europe/London", "Europe/Chisinau"
LORD_HOWE, KOLKATA = "Australia/Lord_Howe", "Asia/Kolkata"


def runs(kind: str, expr: str, zone: str, after: str, count: int) -> list[str]:
    dtstart = datetime(2026, 1, 1, tzinfo=validate_timezone(zone))
    schedule = compile_schedule(kind, expr, zone, dtstart=dtstart, now=NOW)
    found = next_occurrences(schedule, datetime.fromisoformat(after), count)
    instants = [o.astimezone(UTC) for o in found]
    assert instants == sorted(set(instants)), "occurrences must strictly increase"
    assert all(str(o.tzinfo) == zone for o in found)
    return [o.isoformat(timespec="minutes") for o in found]


CRON_FIXED_GAP = [
    (
        NY,
        "30 2 * * *",
        "2026-03-07T12:00-05:00",
        ["2026-03-08T03:00-04:00", "2026-03-09T02:30-04:00"],
    ),
    (
        LONDON,
        "30 1 * * *",
        "2026-03-28T12:00+00:00",
        ["2026-03-29T02:00+01:00", "2026-03-30T01:30+01:00"],
    ),
    (
        CHISINAU,
        "30 3 * * *",
        "2026-03-28T12:00+02:00",
        ["2026-03-29T04:00+03:00", "2026-03-30T03:30+03:00"],
    ),
    (
        LORD_HOWE,
        "15 2 * * *",
        "2026-10-03T12:00+10:30",
        ["2026-10-04T02:30+11:00", "2026-10-05T02:15+11:00"],
    ),
    (
        LORD_HOWE,
        "0 2 * * *",
        "2026-10-03T12:00+10:30",
        ["2026-10-04T02:30+11:00", "2026-10-05T02:00+11:00"],
    ),
    (
        KOLKATA,
        "30 2 * * *",
        "2026-03-07T12:00+05:30",
        ["2026-03-08T02:30+05:30", "2026-03-09T02:30+05:30"],
    ),
    (NY, "@daily", "2026-03-07T12:00-05:00", ["2026-03-08T00:00-05:00", "2026-03-09T00:00-04:00"]),
]


@pytest.mark.parametrize(("zone", "expr", "after", "expected"), CRON_FIXED_GAP)
def test_cron_fixed_time_in_gap_fires_at_first_instant_after_jump(
    zone: str, expr: str, after: str, expected: list[str]
) -> None:
    assert runs("cron", expr, zone, after, 2) == expected


CRON_FIXED_OVERLAP = [
    (
        NY,
        "30 1 * * *",
        "2026-10-31T12:00-04:00",
        ["2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00"],
    ),
    (
        LONDON,
        "30 1 * * *",
        "2026-10-24T12:00+01:00",
        ["2026-10-25T01:30+01:00", "2026-10-26T01:30+00:00"],
    ),
    (
        CHISINAU,
        "30 3 * * *",
        "2026-10-24T12:00+03:00",
        ["2026-10-25T03:30+03:00", "2026-10-26T03:30+02:00"],
    ),
    (
        LORD_HOWE,
        "45 1 * * *",
        "2026-04-04T12:00+11:00",
        ["2026-04-05T01:45+11:00", "2026-04-06T01:45+10:30"],
    ),
    (
        KOLKATA,
        "30 1 * * *",
        "2026-10-31T12:00+05:30",
        ["2026-11-01T01:30+05:30", "2026-11-02T01:30+05:30"],
    ),
]


@pytest.mark.parametrize(("zone", "expr", "after", "expected"), CRON_FIXED_OVERLAP)
def test_cron_fixed_time_in_overlap_fires_once_at_first_pass(
    zone: str, expr: str, after: str, expected: list[str]
) -> None:
    assert runs("cron", expr, zone, after, 2) == expected


CRON_COLLAPSE = [
    (
        NY,
        "0,30 2 * * *",
        "2026-03-08T00:00-05:00",
        ["2026-03-08T03:00-04:00", "2026-03-09T02:00-04:00"],
    ),
    (
        LONDON,
        "0,30 1 * * *",
        "2026-03-29T00:00+00:00",
        ["2026-03-29T02:00+01:00", "2026-03-30T01:00+01:00"],
    ),
    (
        CHISINAU,
        "0,30 3 * * *",
        "2026-03-29T00:00+02:00",
        ["2026-03-29T04:00+03:00", "2026-03-30T03:00+03:00"],
    ),
    (
        LORD_HOWE,
        "0,15 2 * * *",
        "2026-10-04T00:00+10:30",
        ["2026-10-04T02:30+11:00", "2026-10-05T02:00+11:00"],
    ),
    # a slot at the wall time the clocks jump to coincides with the gap firing: still one run
    (
        NY,
        "0 2,3 * * *",
        "2026-03-08T00:00-05:00",
        ["2026-03-08T03:00-04:00", "2026-03-09T02:00-04:00"],
    ),
    (
        KOLKATA,
        "0,30 2 * * *",
        "2026-03-08T00:00+05:30",
        ["2026-03-08T02:00+05:30", "2026-03-08T02:30+05:30"],
    ),
]


@pytest.mark.parametrize(("zone", "expr", "after", "expected"), CRON_COLLAPSE)
def test_cron_fixed_slots_in_one_gap_collapse_into_one_run(
    zone: str, expr: str, after: str, expected: list[str]
) -> None:
    assert runs("cron", expr, zone, after, 2) == expected


CRON_WILDCARD_GAP = [
    (
        NY,
        "*/30 * * * *",
        "2026-03-08T01:00-05:00",
        ["2026-03-08T01:30-05:00", "2026-03-08T03:00-04:00", "2026-03-08T03:30-04:00"],
    ),
    (
        LONDON,
        "*/30 * * * *",
        "2026-03-29T00:00+00:00",
        ["2026-03-29T00:30+00:00", "2026-03-29T02:00+01:00", "2026-03-29T02:30+01:00"],
    ),
    (
        CHISINAU,
        "*/30 * * * *",
        "2026-03-29T02:00+02:00",
        ["2026-03-29T02:30+02:00", "2026-03-29T04:00+03:00", "2026-03-29T04:30+03:00"],
    ),
    (
        LORD_HOWE,
        "*/15 * * * *",
        "2026-10-04T01:30+10:30",
        ["2026-10-04T01:45+10:30", "2026-10-04T02:30+11:00", "2026-10-04T02:45+11:00"],
    ),
    (
        NY,
        "*/15 2 * * *",
        "2026-03-08T00:00-05:00",
        ["2026-03-09T02:00-04:00", "2026-03-09T02:15-04:00", "2026-03-09T02:30-04:00"],
    ),
    (
        KOLKATA,
        "*/30 * * * *",
        "2026-03-08T01:00+05:30",
        ["2026-03-08T01:30+05:30", "2026-03-08T02:00+05:30", "2026-03-08T02:30+05:30"],
    ),
]


@pytest.mark.parametrize(("zone", "expr", "after", "expected"), CRON_WILDCARD_GAP)
def test_cron_wildcard_slots_in_gap_are_skipped(
    zone: str, expr: str, after: str, expected: list[str]
) -> None:
    assert runs("cron", expr, zone, after, 3) == expected


CRON_WILDCARD_OVERLAP = [
    (
        NY,
        "*/30 * * * *",
        "2026-11-01T00:30-04:00",
        [
            "2026-11-01T01:00-04:00",
            "2026-11-01T01:30-04:00",
            "2026-11-01T01:00-05:00",
            "2026-11-01T01:30-05:00",
            "2026-11-01T02:00-05:00",
        ],
    ),
    (
        LONDON,
        "*/30 * * * *",
        "2026-10-25T00:30+01:00",
        [
            "2026-10-25T01:00+01:00",
            "2026-10-25T01:30+01:00",
            "2026-10-25T01:00+00:00",
            "2026-10-25T01:30+00:00",
            "2026-10-25T02:00+00:00",
        ],
    ),
    (
        CHISINAU,
        "*/30 * * * *",
        "2026-10-25T02:30+03:00",
        [
            "2026-10-25T03:00+03:00",
            "2026-10-25T03:30+03:00",
            "2026-10-25T03:00+02:00",
            "2026-10-25T03:30+02:00",
            "2026-10-25T04:00+02:00",
        ],
    ),
    (
        LORD_HOWE,
        "*/15 * * * *",
        "2026-04-05T01:15+11:00",
        [
            "2026-04-05T01:30+11:00",
            "2026-04-05T01:45+11:00",
            "2026-04-05T01:30+10:30",
            "2026-04-05T01:45+10:30",
            "2026-04-05T02:00+10:30",
        ],
    ),
    (
        KOLKATA,
        "*/30 * * * *",
        "2026-11-01T00:30+05:30",
        [
            "2026-11-01T01:00+05:30",
            "2026-11-01T01:30+05:30",
            "2026-11-01T02:00+05:30",
            "2026-11-01T02:30+05:30",
            "2026-11-01T03:00+05:30",
        ],
    ),
]


@pytest.mark.parametrize(("zone", "expr", "after", "expected"), CRON_WILDCARD_OVERLAP)
def test_cron_wildcard_slots_in_overlap_fire_in_both_passes(
    zone: str, expr: str, after: str, expected: list[str]
) -> None:
    assert runs("cron", expr, zone, after, 5) == expected


HOURLY = [
    (
        NY,
        "2026-03-08T00:30-05:00",
        ["2026-03-08T01:00-05:00", "2026-03-08T03:00-04:00", "2026-03-08T04:00-04:00"],
    ),
    (
        NY,
        "2026-11-01T00:30-04:00",
        ["2026-11-01T01:00-04:00", "2026-11-01T01:00-05:00", "2026-11-01T02:00-05:00"],
    ),
    (
        LONDON,
        "2026-03-29T00:30+00:00",
        ["2026-03-29T02:00+01:00", "2026-03-29T03:00+01:00", "2026-03-29T04:00+01:00"],
    ),
    (
        LONDON,
        "2026-10-25T00:30+01:00",
        ["2026-10-25T01:00+01:00", "2026-10-25T01:00+00:00", "2026-10-25T02:00+00:00"],
    ),
    (
        CHISINAU,
        "2026-03-29T02:30+02:00",
        ["2026-03-29T04:00+03:00", "2026-03-29T05:00+03:00", "2026-03-29T06:00+03:00"],
    ),
    (
        CHISINAU,
        "2026-10-25T02:30+03:00",
        ["2026-10-25T03:00+03:00", "2026-10-25T03:00+02:00", "2026-10-25T04:00+02:00"],
    ),
    # Lord Howe: 02:00 falls in the 30-minute gap; the 30-minute overlap holds no :00 slot.
    (
        LORD_HOWE,
        "2026-10-04T01:30+10:30",
        ["2026-10-04T03:00+11:00", "2026-10-04T04:00+11:00", "2026-10-04T05:00+11:00"],
    ),
    (
        LORD_HOWE,
        "2026-04-05T00:30+11:00",
        ["2026-04-05T01:00+11:00", "2026-04-05T02:00+10:30", "2026-04-05T03:00+10:30"],
    ),
    (
        KOLKATA,
        "2026-03-08T00:30+05:30",
        ["2026-03-08T01:00+05:30", "2026-03-08T02:00+05:30", "2026-03-08T03:00+05:30"],
    ),
]


@pytest.mark.parametrize(("zone", "after", "expected"), HOURLY)
def test_hourly_macro_is_a_wildcard_job(zone: str, after: str, expected: list[str]) -> None:
    assert runs("cron", "@hourly", zone, after, 3) == expected


RRULE_GAP = [
    (
        NY,
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        "2026-03-07T12:00-05:00",
        ["2026-03-08T03:30-04:00", "2026-03-09T02:30-04:00"],
    ),
    (
        LONDON,
        "FREQ=DAILY;BYHOUR=1;BYMINUTE=30",
        "2026-03-28T12:00+00:00",
        ["2026-03-29T02:30+01:00", "2026-03-30T01:30+01:00"],
    ),
    (
        CHISINAU,
        "FREQ=DAILY;BYHOUR=3;BYMINUTE=30",
        "2026-03-28T12:00+02:00",
        ["2026-03-29T04:30+03:00", "2026-03-30T03:30+03:00"],
    ),
    (
        LORD_HOWE,
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=15",
        "2026-10-03T12:00+10:30",
        ["2026-10-04T02:45+11:00", "2026-10-05T02:15+11:00"],
    ),
    (
        KOLKATA,
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        "2026-03-07T12:00+05:30",
        ["2026-03-08T02:30+05:30", "2026-03-09T02:30+05:30"],
    ),
]


@pytest.mark.parametrize(("zone", "rule", "after", "expected"), RRULE_GAP)
def test_rrule_time_in_gap_takes_the_offset_before_the_gap(
    zone: str, rule: str, after: str, expected: list[str]
) -> None:
    assert runs("rrule", rule, zone, after, 2) == expected


RRULE_OVERLAP = [
    (
        NY,
        "FREQ=DAILY;BYHOUR=1;BYMINUTE=30",
        "2026-10-31T12:00-04:00",
        ["2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00"],
    ),
    (
        LONDON,
        "FREQ=DAILY;BYHOUR=1;BYMINUTE=30",
        "2026-10-24T12:00+01:00",
        ["2026-10-25T01:30+01:00", "2026-10-26T01:30+00:00"],
    ),
    (
        CHISINAU,
        "FREQ=DAILY;BYHOUR=3;BYMINUTE=30",
        "2026-10-24T12:00+03:00",
        ["2026-10-25T03:30+03:00", "2026-10-26T03:30+02:00"],
    ),
    (
        LORD_HOWE,
        "FREQ=DAILY;BYHOUR=1;BYMINUTE=45",
        "2026-04-04T12:00+11:00",
        ["2026-04-05T01:45+11:00", "2026-04-06T01:45+10:30"],
    ),
    (
        KOLKATA,
        "FREQ=DAILY;BYHOUR=1;BYMINUTE=30",
        "2026-10-31T12:00+05:30",
        ["2026-11-01T01:30+05:30", "2026-11-02T01:30+05:30"],
    ),
    # a repeated local time is one occurrence, so HOURLY does not repeat the hour
    (
        NY,
        "FREQ=HOURLY;BYMINUTE=0",
        "2026-11-01T00:30-04:00",
        ["2026-11-01T01:00-04:00", "2026-11-01T02:00-05:00"],
    ),
]


@pytest.mark.parametrize(("zone", "rule", "after", "expected"), RRULE_OVERLAP)
def test_rrule_time_in_overlap_means_its_first_occurrence(
    zone: str, rule: str, after: str, expected: list[str]
) -> None:
    assert runs("rrule", rule, zone, after, 2) == expected


RRULE_DUPLICATES = [
    # 02:30 (nonexistent) is read as 03:30 EDT, the same instant as the real 03:30
    (
        NY,
        "FREQ=DAILY;BYHOUR=2,3;BYMINUTE=30",
        "2026-03-08T00:00-05:00",
        ["2026-03-08T03:30-04:00", "2026-03-09T02:30-04:00"],
    ),
    # 02:00 (nonexistent, +10:30) is 02:30 +11:00, the same instant as the real 02:30
    (
        LORD_HOWE,
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=0,30",
        "2026-10-04T00:00+10:30",
        ["2026-10-04T02:30+11:00", "2026-10-05T02:00+11:00"],
    ),
    # a gap-shifted 02:10 (03:10 EDT) sorts before the wall time 03:00 it was listed after
    (
        NY,
        "FREQ=DAILY;BYHOUR=2,3;BYMINUTE=10",
        "2026-03-08T00:00-05:00",
        ["2026-03-08T03:10-04:00", "2026-03-09T02:10-04:00"],
    ),
]


@pytest.mark.parametrize(("zone", "rule", "after", "expected"), RRULE_DUPLICATES)
def test_rrule_times_landing_on_one_instant_fire_once(
    zone: str, rule: str, after: str, expected: list[str]
) -> None:
    assert runs("rrule", rule, zone, after, 2) == expected


def test_rrule_gap_shift_reorders_by_instant() -> None:
    # 02:45 becomes 03:45 EDT, after the real 03:15 EDT: results follow the instants.
    got = runs("rrule", "FREQ=DAILY;BYHOUR=2,3;BYMINUTE=15,45", NY, "2026-03-08T00:00-05:00", 4)
    assert got == [
        "2026-03-08T03:15-04:00",
        "2026-03-08T03:45-04:00",
        "2026-03-09T02:15-04:00",
        "2026-03-09T02:45-04:00",
    ]


ONCE = [
    (NY, "2026-03-08T02:30:00", "2026-03-08T03:30-04:00"),
    (LONDON, "2026-03-29T01:30:00", "2026-03-29T02:30+01:00"),
    (CHISINAU, "2026-03-29T03:30:00", "2026-03-29T04:30+03:00"),
    (LORD_HOWE, "2026-10-04T02:15:00", "2026-10-04T02:45+11:00"),
    (NY, "2026-11-01T01:30:00", "2026-11-01T01:30-04:00"),
    (LORD_HOWE, "2026-04-05T01:45:00", "2026-04-05T01:45+11:00"),
    (KOLKATA, "2026-03-08T02:30:00", "2026-03-08T02:30+05:30"),
]


@pytest.mark.parametrize(("zone", "expr", "expected"), ONCE)
def test_once_local_time_follows_the_rrule_reading(zone: str, expr: str, expected: str) -> None:
    assert runs("once", expr, zone, "2026-01-01T00:00+00:00", 2) == [expected]


def test_after_in_the_second_pass_of_an_overlap() -> None:
    second_pass = "2026-11-01T01:10-05:00"
    assert runs("cron", "30 1 * * *", NY, second_pass, 1) == ["2026-11-02T01:30-05:00"]
    assert runs("cron", "*/30 * * * *", NY, second_pass, 1) == ["2026-11-01T01:30-05:00"]
    first_pass_done = "2026-11-01T01:30-04:00"
    assert runs("cron", "*/30 * * * *", NY, first_pass_done, 1) == ["2026-11-01T01:00-05:00"]


@pytest.mark.parametrize(
    "kind_expr", [("cron", "*/30 * * * *"), ("rrule", "FREQ=MINUTELY;INTERVAL=30")]
)
def test_after_may_be_given_in_any_zone(kind_expr: tuple[str, str]) -> None:
    kind, expr = kind_expr
    as_local = runs(kind, expr, NY, "2026-11-01T01:10-04:00", 6)
    as_utc = runs(kind, expr, NY, "2026-11-01T05:10+00:00", 6)
    as_tokyo = runs(kind, expr, NY, "2026-11-01T14:10+09:00", 6)
    assert as_local == as_utc == as_tokyo


def test_kolkata_is_plain_all_year() -> None:
    daily = runs("cron", "30 2 * * *", KOLKATA, "2026-01-01T00:00+05:30", 365)
    assert all(r.endswith("T02:30+05:30") for r in daily)
    assert len(runs("cron", "*/30 * * * *", KOLKATA, "2026-03-29T00:00+05:30", 48)) == 48
