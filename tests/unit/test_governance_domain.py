"""Governance rules: rate-limit settings, quiet hours across DST, budgets and step costs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.budgets import Budget, check_call, step_cost
from domain.errors import RuleViolation
from domain.events import QuietWindow
from domain.quiet_hours import check_windows, quiet_until
from domain.rate_limits import RateLimit, parse_rate_limit, retry_after_header, route_group
from domain.schedules import validate_timezone

NEW_YORK = validate_timezone("America/New_York")


def test_rate_limits_parse_per_second_minute_and_hour() -> None:
    assert parse_rate_limit("20/s burst 40", "x") == RateLimit(20.0, 40)
    assert parse_rate_limit("600/min", "x") == RateLimit(10.0, 10)
    assert parse_rate_limit("36/hour burst 5", "x") == RateLimit(0.01, 5)
    with pytest.raises(RuleViolation, match="x: must look like"):
        parse_rate_limit("fast", "x")
    with pytest.raises(RuleViolation):
        parse_rate_limit("0/s", "x")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1/s burst 99999999999999999999", "burst between 1 and 1000000"),
        ("1/s burst 1000001", "burst between 1 and 1000000"),
        ("1000001/s", "rate between 1 a day and 1000000/s"),
        ("0.04/hour", "rate between 1 a day"),  # one every 25 hours
        ("9" * 90 + "/s", "rate between"),
    ],
)
def test_rate_limits_beyond_the_bounds_are_refused(text: str, reason: str) -> None:
    with pytest.raises(RuleViolation, match=reason):
        parse_rate_limit(text, "x")


def test_the_bounds_themselves_are_limits_a_bucket_can_hold() -> None:
    widest = parse_rate_limit("1000000/s burst 1000000", "x")
    assert widest == RateLimit(1_000_000.0, 1_000_000)
    slowest = parse_rate_limit("0.05/hour burst 1000000", "x")
    assert slowest.refill_seconds * 1000 < 2**53  # a whole number of milliseconds, exactly
    with pytest.raises(ValueError, match="burst"):
        RateLimit(1.0, 2_000_000)


def test_route_groups_and_retry_after() -> None:
    assert route_group("GET", "/tasks") == "reads"
    assert route_group("POST", "/events") == "events"
    assert route_group("POST", "/tasks") == "commands"
    assert route_group("DELETE", "/tools/a.b") == "commands"
    assert route_group("GET", "/health/ready") is None
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"


def _until(local: str, start: str, end: str) -> datetime | None:
    now = datetime.fromisoformat(local).astimezone(UTC)
    return quiet_until(now, [QuietWindow(start=start, end=end)], NEW_YORK)


def test_a_window_crossing_midnight_ends_the_next_morning() -> None:
    assert _until("2026-06-01T23:10-04:00", "22:00", "07:30") == datetime(
        2026, 6, 2, 11, 30, tzinfo=UTC
    )
    assert _until("2026-06-02T06:00-04:00", "22:00", "07:30") == datetime(
        2026, 6, 2, 11, 30, tzinfo=UTC
    )
    assert _until("2026-06-02T07:30-04:00", "22:00", "07:30") is None
    assert _until("2026-06-02T12:00-04:00", "22:00", "07:30") is None


def test_an_end_inside_the_spring_forward_gap_is_the_first_instant_after_it() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 never happens.
    assert _until("2026-03-08T01:10-05:00", "01:00", "02:30") == datetime(
        2026, 3, 8, 7, 0, tzinfo=UTC
    )  # 03:00 EDT


def test_a_repeated_end_is_its_first_pass_unless_that_is_over() -> None:
    # 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
    assert _until("2026-11-01T00:30-04:00", "00:00", "01:30") == datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )  # 01:30 EDT
    assert _until("2026-11-01T01:10-05:00", "00:00", "01:30") == datetime(
        2026, 11, 1, 6, 30, tzinfo=UTC
    )  # 01:30 EST, in the repeated hour


def test_windows_must_be_valid_and_leave_time_free() -> None:
    check_windows([QuietWindow(start="22:00", end="07:30:15")], "quiet_hours")
    with pytest.raises(RuleViolation, match=r"quiet_hours\[0\].start"):
        check_windows([QuietWindow(start="25:00", end="07:00")], "quiet_hours")
    with pytest.raises(RuleViolation, match=r"quiet_hours\[0\].end"):
        check_windows([QuietWindow(start="07:00", end="07:00")], "quiet_hours")
    with pytest.raises(RuleViolation, match="outside every window"):
        check_windows(
            [QuietWindow(start="00:00", end="12:00"), QuietWindow(start="11:00", end="00:00")],
            "quiet_hours",
        )


def test_step_cost_prefers_what_the_tool_reported() -> None:
    assert step_cost(0.5, {"ok": True}) == 0.5
    assert step_cost(0.5, {"_cost": 2}) == 2.0
    assert step_cost(None, {"_cost": True}) == 0.0
    assert step_cost(None, ["_cost"]) == 0.0


def test_a_call_is_refused_when_it_would_exceed_a_budget() -> None:
    task = Budget("task", 1.0, 0.8)
    assert check_call([task], 0.1, may_cost=True) is None
    over = check_call([task], 0.3, may_cost=True)
    assert over is not None
    assert over.budget is task
    assert check_call([Budget("agent", 1.0, 1.0)], 0.0, may_cost=True) is not None
    assert check_call([Budget("agent", 1.0, 1.0)], 0.0, may_cost=False) is None
