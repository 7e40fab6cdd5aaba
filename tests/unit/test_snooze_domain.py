"""Snoozing a task's next occurrence: by seconds or to an instant, at most a year on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import RuleViolation
from domain.events import TaskDefinition, TaskSnoozed
from domain.tasks import MAX_SNOOZE_SECONDS, TaskState, decide_snooze

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
DUE = datetime(2026, 6, 2, 13, tzinfo=UTC)  # 09:00 in New York
RANGE = "is outside the supported range (0001-01-02T00:00:00Z to before 9999-12-31T00:00:00Z)"


def snoozed(
    *, seconds: int | None = None, until: datetime | None = None, due: datetime = DUE
) -> datetime:
    definition = TaskDefinition(
        title="t", schedule_kind="cron", schedule_expr="0 9 * * *", timezone="America/New_York"
    )
    (event,) = decide_snooze(
        TaskState("t-1", definition, "active", due), NOW, seconds=seconds, until=until
    )
    assert isinstance(event, TaskSnoozed)
    return event.until


def refused(**kwargs: object) -> tuple[str, str]:
    with pytest.raises(RuleViolation) as info:
        snoozed(**kwargs)  # type: ignore[arg-type]
    return info.value.field, info.value.reason


def test_until_without_offset_is_wall_time_in_the_task_zone() -> None:
    assert snoozed(until=datetime(2027, 1, 1)) == datetime(2027, 1, 1, 5, tzinfo=UTC)
    # 02:30 on spring-forward day does not exist: the offset before the gap (as schedules)
    assert snoozed(until=datetime(2027, 3, 14, 2, 30)) == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)


def test_until_with_an_offset_is_that_instant() -> None:
    until = datetime(2027, 1, 1, tzinfo=UTC)
    assert snoozed(until=until) == until


def test_until_goes_as_far_as_seconds_do_and_no_further() -> None:
    furthest = DUE + timedelta(seconds=MAX_SNOOZE_SECONDS)
    assert snoozed(until=furthest) == snoozed(seconds=MAX_SNOOZE_SECONDS) == furthest
    field, reason = refused(until=furthest + timedelta(seconds=1))
    assert field == "until"
    assert reason == (
        "must be at most 31536000 seconds (a year) after the occurrence it moves"
        " (2026-06-02T13:00:00+00:00)"
    )
    assert refused(until=datetime(9999, 12, 30, tzinfo=UTC))[0] == "until"


@pytest.mark.parametrize(
    ("until", "shown"),
    [
        (datetime(9999, 12, 31, 23, 59, 59), "9999-12-31T23:59:59 in America/New_York"),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00+00:00"),
    ],
)
def test_until_outside_the_supported_range_names_until(until: datetime, shown: str) -> None:
    assert refused(until=until) == ("until", f"{shown} {RANGE}")


def test_until_in_the_past_is_refused() -> None:
    assert refused(until=datetime(2026, 6, 1, 7, 59)) == ("until", "must be in the future")


def test_seconds_past_the_end_of_the_range_names_seconds() -> None:
    due = datetime(9999, 12, 30, tzinfo=UTC)
    field, reason = refused(seconds=86_400, due=due)
    assert field == "seconds"
    assert reason.startswith("moves it past the supported range")
    assert refused(seconds=MAX_SNOOZE_SECONDS + 1)[0] == "seconds"
