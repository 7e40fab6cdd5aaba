"""RRULE text validation (done before dateutil, which is lenient) and recurrence-set features."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.schedules import ScheduleError, compile_schedule, next_occurrences

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DTSTART = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday


def compile_rule(expr: str, zone: str = "UTC") -> object:
    return compile_schedule("rrule", expr, zone, dtstart=DTSTART, now=NOW)


def utc_runs(expr: str, count: int, zone: str = "UTC") -> list[str]:
    schedule = compile_schedule("rrule", expr, zone, dtstart=DTSTART, now=NOW)
    found = next_occurrences(schedule, datetime(2025, 1, 1, tzinfo=UTC), count)
    return [o.astimezone(UTC).strftime("%Y-%m-%d %H:%M") for o in found]


INVALID = [
    ("FREQ=SOMETIMES", "RRULE: unknown FREQ 'SOMETIMES'"),
    ("COUNT=3", "RRULE: FREQ is required"),
    ("FREQ=DAILY;INTERVAL=0", "RRULE: INTERVAL must be a positive integer, got '0'"),
    ("FREQ=DAILY;INTERVAL=-1", "RRULE: INTERVAL must be a positive integer, got '-1'"),
    ("FREQ=DAILY;COUNT=0", "RRULE: COUNT must be a positive integer, got '0'"),
    ("FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z", "RRULE: COUNT and UNTIL must not both be given"),
    ("FREQ=YEARLY;BYMONTH=13", "RRULE: BYMONTH value 13 is out of range 1..12"),
    ("FREQ=YEARLY;BYMONTH=-1", "RRULE: BYMONTH value -1 is out of range 1..12"),
    ("FREQ=WEEKLY;BYDAY=XX", "RRULE: BYDAY value 'XX' is not a weekday like MO, 1MO or -1FR"),
    ("FREQ=WEEKLY;BYDAY=1MO", "RRULE: BYDAY ordinals (e.g. 1MO) need FREQ=MONTHLY or FREQ=YEARLY"),
    ("FREQ=DAILY;BYDAY=-1FR", "RRULE: BYDAY ordinals (e.g. 1MO) need FREQ=MONTHLY or FREQ=YEARLY"),
    (
        "FREQ=MONTHLY;BYDAY=6MO",
        "RRULE: BYDAY ordinal must be within 1..5 or -5..-1 for FREQ=MONTHLY",
    ),
    ("FREQ=YEARLY;BYDAY=54MO", "RRULE: BYDAY ordinal 54 is out of range 1..53 or -53..-1"),
    (
        "FREQ=YEARLY;BYWEEKNO=20;BYDAY=1MO",
        "RRULE: BYDAY ordinals (e.g. 1MO) cannot be combined with BYWEEKNO",
    ),
    ("FREQ=DAILY;;COUNT=3", "RRULE: has an empty rule part (';;')"),
    ("FREQ=WEEKLY;BYDAY=", "RRULE: BYDAY is empty"),
    ("FREQ=WEEKLY;BYDAY", "RRULE: BYDAY is empty"),
    ("FREQ=WEEKLY;BYDAY=MO,,TU", "RRULE: BYDAY has an empty list item"),
    ("FREQ=DAILY;FOO=1", "RRULE: unknown rule part 'FOO'"),
    ("FREQ=DAILY;BYEASTER=0", "RRULE: unknown rule part 'BYEASTER'"),
    ("FREQ=DAILY;FREQ=WEEKLY", "RRULE: FREQ is given twice"),
    ("FREQ=DAILY;BYHOUR=24", "RRULE: BYHOUR value 24 is out of range 0..23"),
    ("FREQ=DAILY;BYMINUTE=60", "RRULE: BYMINUTE value 60 is out of range 0..59"),
    ("FREQ=DAILY;BYSECOND=60", "RRULE: BYSECOND value 60 is out of range 0..59"),
    ("FREQ=MONTHLY;BYMONTHDAY=0", "RRULE: BYMONTHDAY value 0 is out of range 1..31 or -31..-1"),
    ("FREQ=MONTHLY;BYMONTHDAY=32", "RRULE: BYMONTHDAY value 32 is out of range 1..31 or -31..-1"),
    ("FREQ=YEARLY;BYYEARDAY=367", "RRULE: BYYEARDAY value 367 is out of range 1..366 or -366..-1"),
    ("FREQ=YEARLY;BYWEEKNO=54", "RRULE: BYWEEKNO value 54 is out of range 1..53 or -53..-1"),
    ("FREQ=MONTHLY;BYSETPOS=1", "RRULE: BYSETPOS needs another BYxxx rule part"),
    (
        "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0",
        "RRULE: BYSETPOS value 0 is out of range 1..366 or -366..-1",
    ),
    ("FREQ=DAILY;BYHOUR=nine", "RRULE: BYHOUR value 'NINE' is not an integer"),
    ("FREQ=WEEKLY;WKST=XX", "RRULE: WKST value 'XX' is not a weekday (MO..SU)"),
    ("FREQ=DAILY;UNTIL=tomorrow", "RRULE: UNTIL 'TOMORROW' is not a DATE or DATE-TIME"),
    ("FREQ=DAILY;UNTIL=20261332", "RRULE: UNTIL '20261332' is not a DATE or DATE-TIME"),
    ("FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30", "RRULE: BYMONTHDAY=30 never occurs in BYMONTH=2"),
    ("FREQ=YEARLY;BYMONTH=4,6;BYMONTHDAY=-31", "RRULE: BYMONTHDAY=-31 never occurs in BYMONTH=4,6"),
    ("FREQ=DAILY;INTERVAL=7;BYDAY=TU", "RRULE never produces an occurrence"),
    ("FREQ=MONTHLY;BYDAY=5MO;BYMONTHDAY=1", "RRULE never produces an occurrence"),
    ("FREQ=HOURLY;INTERVAL=2;BYHOUR=4", "RRULE never produces an occurrence"),
    ("FREQ=YEARLY;BYMONTH=1;BYYEARDAY=366", "RRULE never produces an occurrence"),
    (
        "FREQ=DAILY;UNTIL=20250101T000000Z",
        "RRULE produces no occurrences at all (check UNTIL, COUNT and EXDATE)",
    ),
    ("", "RRULE is empty"),
    (";", "RRULE: rule is empty"),
    (
        "DTSTART:20260105T090000\nRRULE:FREQ=DAILY;INTERVAL=0",
        "RRULE: INTERVAL must be a positive integer, got '0'",
    ),
    (
        "DTSTART;TZID=Mars/Base:20260105T090000\nRRULE:FREQ=DAILY",
        "DTSTART TZID 'Mars/Base' is not a known IANA time zone",
    ),
    ("DTSTART:2026-01-05\nRRULE:FREQ=DAILY", "DTSTART value '2026-01-05' is not a DATE-TIME"),
    (
        "DTSTART:20260105T090000\nDTSTART:20260106T090000\nRRULE:FREQ=DAILY",
        "DTSTART is given twice",
    ),
    (
        "DTSTART;TZID=UTC:20260105T090000Z\nRRULE:FREQ=DAILY",
        "DTSTART value '20260105T090000Z' cannot be both UTC and TZID",
    ),
    ("DTSTART;FOO=1:20260105T090000\nRRULE:FREQ=DAILY", "DTSTART does not support parameter FOO"),
    (
        "DTSTART:20260105T090000\nSUMMARY:Standup\nRRULE:FREQ=DAILY",
        "unsupported property SUMMARY (expected DTSTART, RRULE, RDATE, ...)",
    ),
    ("DTSTART:20260105T090000", "recurrence text needs an RRULE or RDATE line"),
    (
        "DTSTART:20260105T090000\nRDATE;VALUE=PERIOD:20260105T090000Z/PT1H",
        "RDATE VALUE=PERIOD is not supported",
    ),
    (
        "DTSTART:20260105T090000\nEXRULE:FREQ=DAILY;BYDAY=1MO\nRRULE:FREQ=DAILY",
        "EXRULE: BYDAY ordinals (e.g. 1MO) need FREQ=MONTHLY or FREQ=YEARLY",
    ),
    (
        "DTSTART:20260105T090000\nRRULE:FREQ=DAILY\nEXRULE:FREQ=DAILY",
        "RRULE produces no occurrences at all (check UNTIL, COUNT and EXDATE)",
    ),
    ("nonsense text: here", "cannot parse line 'nonsense text: here'"),
]


@pytest.mark.parametrize(("expr", "reason"), INVALID, ids=[e or "<empty>" for e, _ in INVALID])
def test_invalid_rules_name_the_bad_part(expr: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as info:
        compile_rule(expr)
    assert info.value.field == "schedule_expr"
    assert info.value.reason == reason


def test_single_trailing_semicolon_is_tolerated() -> None:
    assert utc_runs("FREQ=DAILY;COUNT=2;", 3) == ["2026-01-05 09:00", "2026-01-06 09:00"]


def test_count_until_interval() -> None:
    assert utc_runs("FREQ=DAILY;INTERVAL=3;COUNT=3", 5) == [
        "2026-01-05 09:00",
        "2026-01-08 09:00",
        "2026-01-11 09:00",
    ]
    assert utc_runs("FREQ=WEEKLY;UNTIL=20260119T090000Z", 5) == [
        "2026-01-05 09:00",
        "2026-01-12 09:00",
        "2026-01-19 09:00",
    ]


def test_date_until_keeps_its_whole_day() -> None:
    assert utc_runs("FREQ=DAILY;UNTIL=20260107", 5) == [
        "2026-01-05 09:00",
        "2026-01-06 09:00",
        "2026-01-07 09:00",
    ]


def test_floating_until_is_read_in_the_zone() -> None:
    # 09:00 New York on Jan 7 is 14:00 UTC; UNTIL 09:00 local keeps Jan 7.
    expr = "DTSTART;TZID=America/New_York:20260105T090000\nRRULE:FREQ=DAILY;UNTIL=20260107T090000"
    assert utc_runs(expr, 5) == ["2026-01-05 14:00", "2026-01-06 14:00", "2026-01-07 14:00"]


def test_bysetpos_byweekno_byyearday_wkst_negative_monthday() -> None:
    assert utc_runs("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=2", 3) == [
        "2026-01-30 09:00",
        "2026-02-27 09:00",
    ]
    assert utc_runs("FREQ=YEARLY;BYWEEKNO=10;BYDAY=MO;COUNT=2", 3) == [
        "2026-03-02 09:00",
        "2027-03-08 09:00",
    ]
    assert utc_runs("FREQ=YEARLY;BYYEARDAY=-1;COUNT=2", 3) == [
        "2026-12-31 09:00",
        "2027-12-31 09:00",
    ]
    assert utc_runs("FREQ=MONTHLY;BYMONTHDAY=-2;COUNT=2", 3) == [
        "2026-01-30 09:00",
        "2026-02-27 09:00",
    ]
    # WKST changes which days share an every-other-week period (RFC 5545 example)
    mo = utc_runs("FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO", 4)
    su = utc_runs("FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU", 4)
    assert mo != su


def test_rdate_exdate_exrule_in_full_text() -> None:
    text = "\n".join(
        [
            "DTSTART;TZID=Europe/Paris:20260105T090000",
            "RRULE:FREQ=DAILY;COUNT=5",
            "EXDATE;TZID=Europe/Paris:20260106T090000,20260107T090000",
            "RDATE:20260105T120000Z",
            "EXRULE:FREQ=WEEKLY;BYDAY=FR",
        ]
    )
    assert utc_runs(text, 10) == ["2026-01-05 08:00", "2026-01-05 12:00", "2026-01-08 08:00"]


def test_folded_lines_and_crlf() -> None:
    text = "DTSTART;TZID=Europe/Paris:20260105T090000\r\nRRULE:FREQ=DAILY;\r\n COUNT=2\r\n"
    assert utc_runs(text, 5) == ["2026-01-05 08:00", "2026-01-06 08:00"]


def test_date_valued_dtstart_fires_at_local_midnight() -> None:
    text = "DTSTART;VALUE=DATE:20260105\nRRULE:FREQ=DAILY;COUNT=2"
    schedule = compile_schedule("rrule", text, "Asia/Kolkata", dtstart=None, now=NOW)
    found = next_occurrences(schedule, NOW, 5)
    assert [o.isoformat() for o in found] == [
        "2026-01-05T00:00:00+05:30",
        "2026-01-06T00:00:00+05:30",
    ]


def test_rare_but_valid_rule_is_accepted() -> None:
    # Thursday of ISO week 53, every sixth calendar year: first in 2093 (libical #L681)
    text = "DTSTART:20270103T000000Z\nRRULE:FREQ=YEARLY;BYWEEKNO=53;INTERVAL=6;BYDAY=TH"
    schedule = compile_schedule("rrule", text, "UTC", dtstart=None, now=NOW)
    (found,) = next_occurrences(schedule, NOW, 1)
    assert found.date().isoformat() == "2093-12-31"


def test_long_running_rule_is_fast_forwarded() -> None:
    start = datetime(2000, 1, 1, tzinfo=UTC)
    schedule = compile_schedule("rrule", "FREQ=MINUTELY;INTERVAL=7", "UTC", dtstart=start, now=NOW)
    after = datetime(2036, 5, 5, 12, 0, tzinfo=UTC)
    (found,) = next_occurrences(schedule, after, 1)
    minutes = (found - start).total_seconds() / 60
    assert minutes % 7 == 0
    assert 0 < (found - after).total_seconds() <= 7 * 60
