"""RFC 5545 worked examples and curated third-party RRULE cases, run through the public API."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.schedules import ScheduleError, compile_schedule, next_occurrences

DATA = Path(__file__).resolve().parents[2] / "data" / "conformance"
RFC = json.loads((DATA / "rrule_rfc5545.json").read_text(encoding="utf-8"))
EXTRA = json.loads((DATA / "rrule_extra_cases.json").read_text(encoding="utf-8"))
NOW = datetime(2026, 1, 1, tzinfo=UTC)
# Far before every case's DTSTART so the first occurrence is included.
BEGINNING = datetime(1900, 1, 1, tzinfo=UTC)
_OFFSET = re.compile(r"[+-][0-9]{2}:[0-9]{2}$")

# Erratum 3883: the RFC prints UNTIL=19970902T170000Z (13:00 EDT) for "every 3 hours from
# 9:00 to 17:00" but lists 09:00, 12:00 and 15:00. Decision: evaluate the rule as printed
# (UNTIL is an instant, so 15:00 EDT is excluded) and check the printed list against the
# corrected UNTIL separately (test_rfc_erratum_3883_corrected_until).
RFC_ERRATUM_3883 = "rfc5545-ex33"

# Cases whose RRULE this engine rejects by design, with the message fragment expected.
# - testUntilEmpty has both COUNT and UNTIL, which RFC 5545 forbids ("MUST NOT occur in
#   the same recur"); the brief requires rejecting it. rrule.js expects [] — which is what a
#   rejected rule yields too.
# - testMaxYear (BYMONTH=2;BYMONTHDAY=31) can never fire; rejecting it is cheap and far
#   more useful to a scheduler than accepting a task that never runs. rrule.js expects [].
REJECTED = {
    "rrulejs:testUntilEmpty": "COUNT and UNTIL must not both be given",
    "rrulejs:testMaxYear": "BYMONTHDAY=31 never occurs in BYMONTH=2",
}

# Disagreements (the data file's "disagreements" section): which side this engine takes.
# libical, i.e. the literal expectation in the case:
# - trailing ';' in an RRULE (Google Calendar emits it): tolerated; an empty part in the
#   middle (';;') is still rejected.
# - YEARLY;BYWEEKNO without BYDAY: the weekday comes from DTSTART, per RFC 5545 3.3.10
#   ("information, not contained in the rule ... derived from DTSTART"); dateutil would
#   fire on all seven days of the week.
# - YEARLY;BYMONTHDAY without BYMONTH (or other date parts): the month comes from DTSTART
#   for the same reason, so FREQ=YEARLY stays yearly; dateutil would fire every month.
# - DATE-valued DTSTART with BYMINUTE: RFC 5545 says BYSECOND/BYMINUTE/BYHOUR "MUST be
#   ignored" in that case; dateutil applies them.
# - WEEKLY;BYSETPOS with a mid-week DTSTART: positions are numbered within the whole week
#   (the RFC's set-per-interval model); dateutil numbers the first week from DTSTART.
FOLLOW_LIBICAL = {
    "libical:icalrecur_test.txt#L198",
    "libical:icalrecur_test.txt#L273",
    "libical:icalrecur_test.txt#L390",
    "libical:icalrecur_test.txt#L395",
    "libical:icalrecur_test.txt#L400",
    "libical:icalrecur_test.txt#L516",
    "libical:icalrecur_test.txt#L521",
    "libical:icalrecur_test.txt#L526",
    "libical:icalrecur_test.txt#L531",
    "libical:icalrecur_test.txt#L536",
    "libical:icalrecur_test.txt#L541",
    "libical:icalrecur_test.txt#L546",
    "libical:icalrecur_test.txt#L551",
    "libical:icalrecur_test.txt#L556",
    "libical:icalrecur_test.txt#L561",
    "libical:icalrecur_test.txt#L566",
    "libical:icalrecur_test.txt#L625",
    "libical:icalrecur_test.txt#L661",
    "libical:icalrecur_test.txt#L720",
}
# dateutil (the case's "dateutil_result"):
# - INTERVAL on YEARLY;BYWEEKNO counts calendar years, not ISO week-numbering years.
#   libical's own suite is not consistent here: its cases L671/L681/L686 (in the agreed
#   set above) only work with calendar years, while L725/L730/L740 assume ISO years.
FOLLOW_DATEUTIL = {
    "libical:icalrecur_test.txt#L725",
    "libical:icalrecur_test.txt#L730",
    "libical:icalrecur_test.txt#L740",
}


def _zone_of(ical: str) -> str:
    """The zone a case implies: its DTSTART TZID, else UTC (floating and 'Z' cases)."""
    match = re.search(r"DTSTART[^:\n]*;TZID=([^:;\n]+)", ical)
    return match.group(1) if match else "UTC"


def _render(value: datetime, sample: str) -> str:
    """Format an occurrence like the case's expected strings (date, Z, offset or floating)."""
    if len(sample) == 10:
        assert value.time().isoformat() == "00:00:00"
        return value.date().isoformat()
    if sample.endswith("Z"):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if _OFFSET.search(sample):
        return value.isoformat()
    return value.replace(tzinfo=None).isoformat()  # floating: wall time in UTC


def _occurrences(ical: str, zone: str, expected: list[str], complete: bool) -> list[str]:
    schedule = compile_schedule("rrule", ical, zone, dtstart=None, now=NOW)
    # For a complete set ask for one more, proving the schedule is exhausted afterwards.
    wanted = len(expected) + (1 if complete else 0)
    sample = expected[0] if expected else "2000-01-01T00:00:00"
    return [_render(o, sample) for o in next_occurrences(schedule, BEGINNING, wanted)]


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case["id"] for case in cases]


def test_data_files_are_complete() -> None:
    assert len(RFC["entries"]) == RFC["count_entries"] == 42
    assert len(EXTRA["cases"]) == EXTRA["count"] == 65
    assert {d["id"] for d in EXTRA["disagreements"]} == FOLLOW_LIBICAL | FOLLOW_DATEUTIL


@pytest.mark.parametrize("entry", RFC["entries"], ids=_ids(RFC["entries"]))
def test_rfc5545_example(entry: dict[str, Any]) -> None:
    expected = entry["expected"]
    if entry["id"] == RFC_ERRATUM_3883:
        expected = entry["verification"]["dateutil_result"]
    got = _occurrences(entry["ical"], entry["tzid"], expected, entry["expected_is_complete"])
    assert got == expected


def test_rfc_erratum_3883_corrected_until() -> None:
    (entry,) = [e for e in RFC["entries"] if e["id"] == RFC_ERRATUM_3883]
    corrected = entry["erratum"]["corrected_rrule"]
    ical = entry["ical"].replace(entry["rrule"], corrected)
    assert _occurrences(ical, entry["tzid"], entry["expected"], True) == entry["expected"]


@pytest.mark.parametrize("case", EXTRA["cases"], ids=_ids(EXTRA["cases"]))
def test_extra_case(case: dict[str, Any]) -> None:
    zone = _zone_of(case["ical"])
    if case["id"] in REJECTED:
        with pytest.raises(ScheduleError, match=REJECTED[case["id"]]) as info:
            compile_schedule("rrule", case["ical"], zone, dtstart=None, now=NOW)
        assert info.value.field == "schedule_expr"
        return
    got = _occurrences(case["ical"], zone, case["expected"], case.get("complete", True))
    assert got == case["expected"]


@pytest.mark.parametrize("case", EXTRA["disagreements"], ids=_ids(EXTRA["disagreements"]))
def test_disagreement_decision(case: dict[str, Any]) -> None:
    expected = case["expected"] if case["id"] in FOLLOW_LIBICAL else case["dateutil_result"]
    zone = _zone_of(case["ical"])
    assert _occurrences(case["ical"], zone, expected, case.get("complete", True)) == expected
