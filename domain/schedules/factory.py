"""compile_schedule: validate a task's schedule fields and build its Schedule (load_schedule:
the same for a stored one, cached)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.schedules.base import Schedule
from domain.schedules.cron import CronSchedule
from domain.schedules.errors import ScheduleError, expr_error
from domain.schedules.once import compile_once
from domain.schedules.rrule_compile import compile_rrule
from domain.schedules.zones import require_aware, user_instant, validate_timezone

KINDS = ("cron", "rrule", "once")
MAX_EXPR_LENGTH = 10_000


def compile_schedule(
    kind: str, expr: str, timezone: str, *, dtstart: datetime | None, now: datetime | None
) -> Schedule:
    """Compile a schedule or raise ScheduleError naming the bad field.

    ``now`` is None when loading a stored schedule: a one-shot time is then not refused for
    being in the past (it was checked when the task was created).
    """
    if now is not None:
        require_aware(now, "now")
    zone = validate_timezone(timezone)
    if not isinstance(expr, str):
        raise expr_error("must be a string")
    if len(expr) > MAX_EXPR_LENGTH:
        raise expr_error(f"is longer than {MAX_EXPR_LENGTH} characters")
    if kind == "cron":
        cron = CronSchedule(expr, zone)
        if dtstart is None:
            return cron
        return StartingAt(cron, user_instant(dtstart, zone, "dtstart"))
    if kind == "rrule":
        return compile_rrule(expr, zone, dtstart)
    if kind == "once":
        return compile_once(expr, zone, now)
    raise ScheduleError("schedule_kind", f"unknown kind {kind!r} (expected cron, rrule or once)")


@dataclass(frozen=True)
class StartingAt:
    """A cron schedule with a ``dtstart``: its occurrences from that instant on (a task that
    starts firing on a given day; as an RRULE's DTSTART, the first occurrence may be it)."""

    schedule: Schedule
    start: datetime

    def next_after(self, after: datetime) -> datetime | None:
        return self.schedule.next_after(max(after, self.start - _JUST_BEFORE))


_JUST_BEFORE = timedelta(microseconds=1)


# Schedules are immutable values, so one compiled object serves every caller (timer, API).
@functools.lru_cache(maxsize=200_000)
def load_schedule(kind: str, expr: str, timezone: str, dtstart: datetime | None) -> Schedule:
    """A stored task's compiled schedule, cached: compiling an RRULE costs more than using it."""
    return compile_schedule(kind, expr, timezone, dtstart=dtstart, now=None)
