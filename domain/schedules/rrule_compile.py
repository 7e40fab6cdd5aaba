"""Turn RRULE text (bare rule or full recurrence text) into an RRuleSchedule."""

from __future__ import annotations

from datetime import MAXYEAR, UTC, datetime, time
from zoneinfo import ZoneInfo

from domain.schedules.cron_parse import MAX_DAYS
from domain.schedules.errors import ScheduleError, expr_error
from domain.schedules.ical import IcalTime, Recurrence, parse_recurrence
from domain.schedules.rrule import RRuleSchedule
from domain.schedules.rrule_parts import RuleParts, Until
from domain.schedules.rrule_stream import RuleArgs, RuleStream, rule_args
from domain.schedules.zones import ONE_SECOND, user_instant, validate_timezone, wall_to_instant

_END_OF_DAY = time(23, 59, 59)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def compile_rrule(expr: str, zone: ZoneInfo, dtstart: datetime | None) -> RRuleSchedule:
    """Compile; ``dtstart`` anchors a rule whose text has no DTSTART of its own."""
    recurrence = parse_recurrence(expr)
    evaluation, origin, is_date = _origin(recurrence, zone, dtstart)
    rules = [_stream(p, origin, is_date, "RRULE") for p in recurrence.rrules]
    exrules = [_stream(p, origin, is_date, "EXRULE") for p in recurrence.exrules]
    rdates = [_local(item, evaluation) for item in recurrence.rdates]
    exdates = frozenset(_local(item, evaluation).astimezone(UTC) for item in recurrence.exdates)
    schedule = RRuleSchedule(evaluation, zone, rules, exrules, rdates, exdates)
    starts = [item.astimezone(UTC) for item in ([origin] if origin else []) + rdates]
    if schedule.next_after(min(starts) - ONE_SECOND) is None:
        raise expr_error("RRULE produces no occurrences at all (check UNTIL, COUNT and EXDATE)")
    return schedule


def _origin(
    recurrence: Recurrence, zone: ZoneInfo, dtstart: datetime | None
) -> tuple[ZoneInfo, datetime | None, bool]:
    """Evaluation zone, DTSTART as an aware wall time in it (or None), DATE-valued flag."""
    given = recurrence.dtstart
    if given is not None:
        evaluation = _zone_of(given, zone)
        user_instant(given.wall, evaluation, "schedule_expr")  # refuses one out of range
        return evaluation, given.wall.replace(tzinfo=evaluation), given.is_date
    if not (recurrence.rrules or recurrence.exrules):
        return zone, None, False
    if dtstart is None:
        raise ScheduleError("dtstart", "is required for an RRULE without its own DTSTART")
    if not isinstance(dtstart, datetime):
        raise ScheduleError("dtstart", "must be a datetime")
    instant = user_instant(dtstart, zone, "dtstart")
    # A wall time stays as written (a skipped 02:30 keeps the rule at 02:30 on other days).
    wall = instant.astimezone(zone) if dtstart.utcoffset() is not None else dtstart
    return zone, wall.replace(tzinfo=zone, microsecond=0, fold=0), False


def _stream(parts: RuleParts, origin: datetime | None, is_date: bool, label: str) -> RuleStream:
    assert origin is not None  # callers only build rule streams when there is a DTSTART
    args = rule_args(parts, origin.replace(tzinfo=None), is_date)
    _check_month_days(args, label)
    until = _until(parts.until, origin, is_date)
    stream = RuleStream(args, origin, until, parts.count)
    if not stream.produces():
        raise expr_error(f"{label} never produces an occurrence")
    return stream


def _check_month_days(args: RuleArgs, label: str) -> None:
    if not (args.bymonthday and args.bymonth):
        return
    if any(abs(day) <= MAX_DAYS[month - 1] for day in args.bymonthday for month in args.bymonth):
        return
    days = ",".join(str(day) for day in args.bymonthday)
    months = ",".join(str(month) for month in args.bymonth)
    raise expr_error(f"{label}: BYMONTHDAY={days} never occurs in BYMONTH={months}")


def _until(until: Until | None, origin: datetime, is_date: bool) -> datetime | None:
    """UNTIL as a UTC instant; a floating or DATE value is read in the evaluation zone."""
    if until is None:
        return None
    if until.kind == "utc":
        return until.value.replace(tzinfo=UTC)
    zone = origin.tzinfo
    assert isinstance(zone, ZoneInfo)
    wall = until.value
    if until.kind == "date" and not is_date:
        # A DATE UNTIL on a DATE-TIME rule keeps the whole of that day.
        wall = datetime.combine(wall.date(), _END_OF_DAY)
    try:
        return wall_to_instant(wall, zone)
    except OverflowError:
        # An end beyond the calendar's (UNTIL=99991231T235959 west of UTC) ends nothing any
        # earlier than the calendar's own end does; one before its start ends everything.
        return _LATEST if wall.year == MAXYEAR else _EARLIEST


def _local(item: IcalTime, zone: ZoneInfo) -> datetime:
    """An RDATE/EXDATE value as an aware wall time in the evaluation zone."""
    source = _zone_of(item, zone)
    instant = user_instant(item.wall, source, "schedule_expr")
    return item.wall.replace(tzinfo=zone) if source is zone else instant.astimezone(zone)


def _zone_of(item: IcalTime, zone: ZoneInfo) -> ZoneInfo:
    """The zone a DTSTART/RDATE/EXDATE value is read in: its TZID, UTC, or else ``zone``."""
    return item.zone or (validate_timezone("UTC") if item.utc else zone)
