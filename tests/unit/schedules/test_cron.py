"""Cron parsing, the Vixie day-of-month/day-of-week rule, and rejection of bad expressions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.schedules import ScheduleError, compile_schedule, next_occurrences
from domain.schedules.cron_parse import CronSpec, parse_cron

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def utc_runs(expr: str, after: datetime, count: int) -> list[str]:
    schedule = compile_schedule("cron", expr, "UTC", dtstart=None, now=NOW)
    return [o.strftime("%Y-%m-%d %H:%M:%S") for o in next_occurrences(schedule, after, count)]


def test_five_fields_mean_second_zero() -> None:
    spec = parse_cron("30 9 * * *")
    assert spec.seconds == (0,)
    assert spec.minutes == (30,)
    assert spec.hours == (9,)
    assert spec.days == frozenset(range(1, 32))
    assert spec.months == tuple(range(1, 13))
    assert spec.weekdays == frozenset(range(7))


def test_six_fields_lead_with_seconds() -> None:
    spec = parse_cron("*/20 0 12 * * *")
    assert spec.seconds == (0, 20, 40)
    assert spec.minutes == (0,)
    assert spec.hours == (12,)
    assert utc_runs("*/20 0 12 * * *", datetime(2026, 1, 1, 11, tzinfo=UTC), 4) == [
        "2026-01-01 12:00:00",
        "2026-01-01 12:00:20",
        "2026-01-01 12:00:40",
        "2026-01-02 12:00:00",
    ]


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("*/15", (0, 15, 30, 45)),
        ("10-50/5", tuple(range(10, 51, 5))),
        ("5/10", (5, 15, 25, 35, 45, 55)),
        ("1,2,5-7", (1, 2, 5, 6, 7)),
        ("0-59/30,7", (0, 7, 30)),
        ("59", (59,)),
        ("3-3", (3,)),
        ("*/100", (0,)),
    ],
)
def test_minute_lists_ranges_and_steps(text: str, minutes: tuple[int, ...]) -> None:
    assert parse_cron(f"{text} * * * *").minutes == minutes


def test_step_from_a_start_runs_to_the_field_maximum() -> None:
    assert parse_cron("0 5/10 * * *").hours == (5, 15)
    assert parse_cron("0 0 25/3 * *").days == frozenset({25, 28, 31})


@pytest.mark.parametrize(
    ("expr", "months", "weekdays"),
    [
        ("0 9 * JAN-MAR MON-FRI", (1, 2, 3), {1, 2, 3, 4, 5}),
        ("0 9 * jan,Jun,DEC sun,sat", (1, 6, 12), {0, 6}),
        ("0 9 * oct-dec/2 TUE", (10, 12), {2}),
        ("0 9 * 2 mon-wed,FRI", (2,), {1, 2, 3, 5}),
    ],
)
def test_month_and_weekday_names(expr: str, months: tuple[int, ...], weekdays: set[int]) -> None:
    spec = parse_cron(expr)
    assert spec.months == months
    assert spec.weekdays == weekdays


@pytest.mark.parametrize("field", ["0", "7", "SUN", "sun"])
def test_zero_and_seven_are_both_sunday(field: str) -> None:
    assert parse_cron(f"0 0 * * {field}").weekdays == {0}


def test_weekday_ranges_through_seven() -> None:
    assert parse_cron("0 0 * * 5-7").weekdays == {5, 6, 0}
    assert parse_cron("0 0 * * 0-7").weekdays == set(range(7))
    assert parse_cron("0 0 * * */2").weekdays == {0, 2, 4, 6}
    # 2026-01-04 is a Sunday
    assert utc_runs("0 0 * * 7", datetime(2026, 1, 1, tzinfo=UTC), 2) == [
        "2026-01-04 00:00:00",
        "2026-01-11 00:00:00",
    ]


@pytest.mark.parametrize(
    ("macro", "equivalent", "fixed"),
    [
        ("@yearly", "0 0 1 1 *", True),
        ("@annually", "0 0 1 1 *", True),
        ("@monthly", "0 0 1 * *", True),
        ("@weekly", "0 0 * * 0", True),
        ("@daily", "0 0 * * *", True),
        ("@midnight", "0 0 * * *", True),
        ("@hourly", "0 * * * *", False),
        ("@DAILY", "0 0 * * *", True),
    ],
)
def test_macros(macro: str, equivalent: str, fixed: bool) -> None:
    spec = parse_cron(macro)
    assert spec == parse_cron(equivalent)
    assert spec.fixed is fixed


@pytest.mark.parametrize(
    ("expr", "fixed"),
    [
        ("30 2 * * *", True),
        ("0,30 2 * * *", True),
        ("0 9-17 * * 1-5", True),
        ("*/30 * * * *", False),
        ("30 * * * *", False),
        ("*/15 2 * * *", False),
        ("0 */2 * * *", False),
        ("*/10 30 2 * * *", True),  # the seconds field does not matter
    ],
)
def test_fixed_versus_wildcard(expr: str, fixed: bool) -> None:
    assert parse_cron(expr).fixed is fixed


def test_next_occurrence_jumps_fields() -> None:
    friday_evening = datetime(2026, 1, 2, 20, tzinfo=UTC)
    assert utc_runs("30 9 * * 1-5", friday_evening, 2) == [
        "2026-01-05 09:30:00",
        "2026-01-06 09:30:00",
    ]
    assert utc_runs("0 0 1 1 *", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), 1) == [
        "2027-01-01 00:00:00"
    ]
    assert utc_runs("15 10 31 * *", datetime(2026, 1, 31, 11, tzinfo=UTC), 2) == [
        "2026-03-31 10:15:00",
        "2026-05-31 10:15:00",
    ]


def test_strictly_after() -> None:
    at_run = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    assert utc_runs("30 9 * * *", at_run, 1) == ["2026-01-02 09:30:00"]
    just_before = datetime(2026, 1, 1, 9, 29, 59, 999999, tzinfo=UTC)
    assert utc_runs("30 9 * * *", just_before, 1) == ["2026-01-01 09:30:00"]


def test_february_29_is_valid_and_waits_for_leap_years() -> None:
    assert utc_runs("0 0 29 2 *", NOW, 3) == [
        "2028-02-29 00:00:00",
        "2032-02-29 00:00:00",
        "2036-02-29 00:00:00",
    ]


def test_runs_out_at_year_9999() -> None:
    late = datetime(9999, 6, 1, tzinfo=UTC)
    assert utc_runs("0 0 1 1 *", late, 1) == []


# Vixie/cronie: both day fields restricted -> OR; either one starting with '*' -> AND.


def test_both_day_fields_restricted_are_ored() -> None:
    # Fridays in January 2026 are 2, 9, 16, 23, 30; the 13th is a Tuesday.
    assert utc_runs("0 9 13 * 5", NOW, 6) == [
        "2026-01-02 09:00:00",
        "2026-01-09 09:00:00",
        "2026-01-13 09:00:00",
        "2026-01-16 09:00:00",
        "2026-01-23 09:00:00",
        "2026-01-30 09:00:00",
    ]


def test_star_day_of_month_leaves_only_weekday() -> None:
    assert utc_runs("0 9 * * 5", NOW, 3) == [
        "2026-01-02 09:00:00",
        "2026-01-09 09:00:00",
        "2026-01-16 09:00:00",
    ]


def test_star_day_of_week_leaves_only_day_of_month() -> None:
    assert utc_runs("0 9 13 * *", NOW, 2) == ["2026-01-13 09:00:00", "2026-02-13 09:00:00"]


def test_star_step_day_of_month_is_anded() -> None:
    # */2 in day-of-month starts with '*': odd days that are also Fridays.
    assert utc_runs("0 9 */2 * 5", NOW, 4) == [
        "2026-01-09 09:00:00",
        "2026-01-23 09:00:00",
        "2026-02-13 09:00:00",
        "2026-02-27 09:00:00",
    ]


def test_star_step_day_of_week_is_anded() -> None:
    # 13ths falling on Sun/Tue/Thu/Sat: Jan 13 (Tue), Jun 13 (Sat), Aug 13 (Thu).
    assert utc_runs("0 9 13 * */2", NOW, 3) == [
        "2026-01-13 09:00:00",
        "2026-06-13 09:00:00",
        "2026-08-13 09:00:00",
    ]


def test_range_day_fields_are_ored() -> None:
    # "1-7 * 1": first seven days OR Mondays (Jan 5 is a Monday, then Jan 12...).
    runs = utc_runs("0 9 1-7 * 1", NOW, 9)
    assert runs[:8] == [f"2026-01-0{d} 09:00:00" for d in range(1, 8)] + ["2026-01-12 09:00:00"]


def test_day_of_month_31_with_or_rule_is_allowed() -> None:
    # Both restricted: Mondays of February still fire although Feb never has a 31st.
    assert utc_runs("0 9 31 2 MON", NOW, 1) == ["2026-02-02 09:00:00"]


def test_spec_day_matching() -> None:
    spec: CronSpec = parse_cron("0 9 13 * 5")
    assert spec.day_matches(13, 2)
    assert spec.day_matches(2, 5)
    assert not spec.day_matches(2, 4)
    anded = parse_cron("0 9 13 * */2")
    assert not anded.day_matches(13, 5)
    assert anded.day_matches(13, 6)


INVALID = [
    ("61 * * * *", "minute value 61 is out of range 0-59"),
    ("* 24 * * *", "hour value 24 is out of range 0-23"),
    ("* 1-24 * * *", "hour value 24 is out of range 0-23"),
    ("* * 0 * *", "day-of-month value 0 is out of range 1-31"),
    ("* * 32 * *", "day-of-month value 32 is out of range 1-31"),
    ("* * * 0 *", "month value 0 is out of range 1-12"),
    ("* * * 13 *", "month value 13 is out of range 1-12"),
    ("* * * * 8", "day-of-week value 8 is out of range 0-7"),
    ("60 * * * * *", "second value 60 is out of range 0-59"),
    ("0 0 0 * * 9", "day-of-week value 9 is out of range 0-7"),
    ("*/0 * * * *", "minute step 0 must be at least 1"),
    ("5/0 * * * *", "minute step 0 must be at least 1"),
    ("*/x * * * *", "minute step 'x' is not a positive number"),
    ("*/5/2 * * * *", "minute step '5/2' is not a positive number"),
    ("50-10 * * * *", "minute range 50-10 is reversed"),
    ("* * * DEC-JAN *", "month range 12-1 is reversed"),
    ("* * * * 7-0", "day-of-week range 7-0 is reversed"),
    ("a * * * *", "minute value 'a' is not a number"),
    ("-5 * * * *", "minute value '' is not a number"),
    ("1,,2 * * * *", "minute '1,,2' has an empty list item"),
    ("* * * JANUARY *", "month value 'JANUARY' is not a number or name"),
    ("* * * JAN-MON *", "month value 'MON' is not a number or name"),
    ("* * * * FUNDAY", "day-of-week value 'FUNDAY' is not a number or name"),
    ("* * * * MON-", "day-of-week value '' is not a number or name"),
    ("* * * * 1-2-3", "day-of-week value '2-3' is not a number or name"),
    ("* * * * 5#3", "day-of-week value '5#3' is not a number or name"),
    ("* * L * *", "day-of-month value 'L' is not a number"),
    ("? * * * *", "minute value '?' is not a number"),
    ("** * * * *", "minute value '**' is not a number"),
    ("* MON * * *", "hour value 'MON' is not a number"),
    ("* * * * * * *", "cron expression needs 5 or 6 fields, got 7"),
    ("* * * *", "cron expression needs 5 or 6 fields, got 4"),
    ("", "cron expression is empty"),
    ("   ", "cron expression is empty"),
    ("hello world", "cron expression needs 5 or 6 fields, got 2"),
    ("@reboot", "unsupported cron macro '@reboot'"),
    ("@every 5m", "unsupported cron macro '@every 5m'"),
    ("@daily 5", "unsupported cron macro '@daily 5'"),
    ("* * 31 2 *", "day-of-month 31 never occurs in month 2"),
    ("* * 30 2 *", "day-of-month 30 never occurs in month 2"),
    ("0 0 31 4,6,9,11 *", "day-of-month 31 never occurs in month 4,6,9,11"),
    ("0 0 30,31 FEB */2", "day-of-month 30,31 never occurs in month 2"),
]


@pytest.mark.parametrize(("expr", "message"), INVALID, ids=[e or "<empty>" for e, _ in INVALID])
def test_invalid_expressions_name_the_field(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        compile_schedule("cron", expr, "UTC", dtstart=None, now=NOW)
    assert info.value.field == "schedule_expr"
    assert info.value.reason == message
    assert str(info.value) == f"schedule_expr: {message}"


def test_enough_invalid_examples_name_a_field() -> None:
    names = ("second", "minute", "hour", "day-of-month", "month", "day-of-week")
    naming = [m for _, m in INVALID if m.split(" ")[0] in names]
    assert len(naming) >= 25


def test_february_29_alone_is_accepted() -> None:
    assert parse_cron("0 0 29 2 *").days == {29}
