"""One RRULE/EXRULE bound to its DTSTART, as an ordered stream of local wall times."""

from __future__ import annotations

import itertools
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.rrule import rrule, weekday

from domain.schedules.rrule_parts import DAILY, HOURLY, MONTHLY, WEEKLY, YEARLY, Freq, RuleParts

MINUTELY = 5
_GREGORIAN_CYCLE = 400  # years after which weekdays and leap years repeat exactly
_RESTARTS_KEPT = 8


@dataclass(frozen=True, slots=True)
class RuleArgs:
    """dateutil arguments with every DTSTART-derived default made explicit.

    Explicit defaults let the rule be restarted at any later period boundary (cheap
    fast-forward) without changing which local times it selects.
    """

    freq: Freq
    interval: int
    wkst: int
    byweekday: tuple[weekday, ...] | None
    bymonth: tuple[int, ...] | None
    bymonthday: tuple[int, ...] | None
    byyearday: tuple[int, ...] | None
    byweekno: tuple[int, ...] | None
    bysetpos: tuple[int, ...] | None
    byhour: tuple[int, ...] | None
    byminute: tuple[int, ...] | None
    bysecond: tuple[int, ...] | None

    def build(self, dtstart: datetime, until: datetime | None = None) -> rrule:
        return rrule(
            self.freq,
            dtstart=dtstart,
            interval=self.interval,
            wkst=self.wkst,
            until=until,
            bysetpos=self.bysetpos,
            bymonth=self.bymonth,
            bymonthday=self.bymonthday,
            byyearday=self.byyearday,
            byweekno=self.byweekno,
            byweekday=self.byweekday,
            byhour=self.byhour,
            byminute=self.byminute,
            bysecond=self.bysecond,
        )


def rule_args(parts: RuleParts, start: datetime, is_date: bool) -> RuleArgs:
    """Resolve defaults the RFC 5545 way ("information not in the rule comes from DTSTART")."""
    hour, minute, second = _time_args(parts, start, is_date)
    byweekday = tuple(weekday(day, n) for day, n in parts.byday) or None
    bymonth = parts.bymonth or None
    bymonthday = parts.bymonthday or None
    yearly = parts.freq == YEARLY
    if not (parts.byweekno or parts.byyearday or parts.bymonthday or parts.byday):
        if yearly:
            bymonth, bymonthday = bymonth or (start.month,), (start.day,)
        elif parts.freq == MONTHLY:
            bymonthday = (start.day,)
        elif parts.freq == WEEKLY:
            byweekday = (weekday(start.weekday()),)
    elif yearly and _only(parts, "bymonthday"):
        # YEARLY;BYMONTHDAY=29 means the 29th of DTSTART's month each year (as libical),
        # not the 29th of every month.
        bymonth = (start.month,)
    elif yearly and _only(parts, "byweekno", "bymonth"):
        # YEARLY;BYWEEKNO=20 means DTSTART's weekday in week 20, not all seven days.
        byweekday = (weekday(start.weekday()),)
    return RuleArgs(
        freq=parts.freq,
        interval=parts.interval,
        wkst=parts.wkst,
        byweekday=byweekday,
        bymonth=bymonth,
        bymonthday=bymonthday,
        byyearday=parts.byyearday or None,
        byweekno=parts.byweekno or None,
        bysetpos=parts.bysetpos or None,
        byhour=hour,
        byminute=minute,
        bysecond=second,
    )


def _only(parts: RuleParts, main: str, *extra: str) -> bool:
    """True when date part ``main`` is given and no date part besides ``main``/``extra`` is."""
    names = ("bymonth", "bymonthday", "byyearday", "byweekno", "byday")
    given = {name for name in names if getattr(parts, name)}
    return main in given and given <= {main, *extra}


_Times = tuple[tuple[int, ...] | None, tuple[int, ...] | None, tuple[int, ...] | None]


def _time_args(parts: RuleParts, start: datetime, is_date: bool) -> _Times:
    # RFC 5545: BYHOUR/BYMINUTE/BYSECOND "MUST be ignored" when DTSTART is a DATE.
    given = ((), (), ()) if is_date else (parts.byhour, parts.byminute, parts.bysecond)
    defaults = (start.hour, start.minute, start.second)
    # A unit coarser than FREQ defaults to DTSTART's value (DAILY fires at DTSTART's hour).
    hour, minute, second = (
        values or ((default,) if parts.freq < HOURLY + level else None)
        for level, (values, default) in enumerate(zip(given, defaults, strict=True))
    )
    return hour, minute, second


def period_start(args: RuleArgs, origin: datetime, target: datetime) -> datetime | None:
    """Start of the latest period (in INTERVAL steps from ``origin``'s) not after ``target``.

    Both are naive wall times; returns None past year 9999.
    """
    try:
        if args.freq == YEARLY:
            years = max(0, (target.year - origin.year) // args.interval) * args.interval
            return datetime(origin.year + years, 1, 1)
        if args.freq == MONTHLY:
            first = origin.year * 12 + origin.month - 1
            steps = max(0, (target.year * 12 + target.month - 1 - first) // args.interval)
            year, month = divmod(first + steps * args.interval, 12)
            return datetime(year, month + 1, 1)
        return _fixed_period_start(args, origin, target)
    except (OverflowError, ValueError):
        return None


def _fixed_period_start(args: RuleArgs, origin: datetime, target: datetime) -> datetime:
    base, length = _first_period(args, origin)
    periods = max(0, (target - base) // length // args.interval)
    return base + periods * args.interval * length


def _first_period(args: RuleArgs, origin: datetime) -> tuple[datetime, timedelta]:
    """Start and length of the DAILY-or-finer period containing ``origin``."""
    midnight = datetime.combine(origin.date(), datetime.min.time())
    if args.freq == WEEKLY:
        return midnight - timedelta(days=(origin.weekday() - args.wkst) % 7), timedelta(days=7)
    if args.freq == DAILY:
        return midnight, timedelta(days=1)
    if args.freq == HOURLY:
        return origin.replace(minute=0, second=0), timedelta(hours=1)
    if args.freq == MINUTELY:
        return origin.replace(second=0), timedelta(minutes=1)
    return origin, timedelta(seconds=1)


class RuleStream:
    """An RRULE or EXRULE with its DTSTART and UNTIL, yielding aware local wall times.

    Without COUNT the rule is restarted at a period boundary near the query, so cost does
    not grow with the schedule's age.  With COUNT it must be counted from DTSTART; those
    occurrences (at most COUNT) are memoised as they are first needed.
    """

    def __init__(
        self, args: RuleArgs, origin: datetime, until: datetime | None, count: int | None
    ) -> None:
        self.args = args
        self.origin = origin  # aware, tzinfo = the evaluation zone
        self.until = until
        self.count = count
        self._lock = threading.Lock()
        self._items: list[datetime] = []
        self._source: Iterator[datetime] | None = None
        self._restarts: dict[datetime, rrule] = {}

    def walls_from(self, floor: datetime) -> Iterator[datetime]:
        """Occurrences (aware, wall-ordered) with wall time >= naive ``floor``."""
        lower = max(floor.replace(tzinfo=self.origin.tzinfo), self.origin)
        if self.count is not None:
            return self._counted_from(lower)
        origin, target = self.origin.replace(tzinfo=None), lower.replace(tzinfo=None)
        start = period_start(self.args, origin, target)
        if start is None:
            return iter(())
        rule = self._restarted(start)
        if rule is None:
            return iter(())
        return itertools.dropwhile(lambda item: item < lower, _guarded(rule))

    def _restarted(self, start: datetime) -> rrule | None:
        """The rule restarted at a period boundary; a few are kept, as queries cluster."""
        with self._lock:
            rule = self._restarts.get(start)
        if rule is not None:
            return rule
        try:
            rule = self.args.build(start.replace(tzinfo=self.origin.tzinfo), self.until)
        except ValueError:  # cannot happen once produces() passed; treat as exhausted
            return None
        with self._lock:
            if len(self._restarts) >= _RESTARTS_KEPT:
                del self._restarts[next(iter(self._restarts))]
            self._restarts[start] = rule
        return rule

    def produces(self) -> bool:
        """Does the rule (ignoring COUNT/UNTIL) ever select a time, judged over 400+ years?

        dateutil loops to year 9999 on a rule that matches nothing, so the check runs on a
        copy moved by whole 400-year Gregorian cycles (same calendar) close to year 9999.
        """
        origin = self.origin.replace(tzinfo=None)
        cycles = (9599 - origin.year) // _GREGORIAN_CYCLE
        shifted = origin.replace(year=origin.year + cycles * _GREGORIAN_CYCLE)
        start = period_start(self.args, shifted, shifted)
        if start is None:
            return False
        try:
            rule = self.args.build(start)
        except ValueError:  # dateutil: "Invalid rrule byxxx generates an empty set"
            return False
        return any(item >= shifted for item in _guarded(rule))

    def _counted_from(self, lower: datetime) -> Iterator[datetime]:
        with self._lock:
            index = bisect_left(self._items, lower)
        while (item := self._item(index)) is not None:
            index += 1
            if item >= lower:
                yield item

    def _item(self, index: int) -> datetime | None:
        with self._lock:
            if self._source is None:
                self._source = self._counted_source()
            while len(self._items) <= index:
                following = next(self._source, None)
                if following is None:
                    return None
                self._items.append(following)
            return self._items[index]

    def _counted_source(self) -> Iterator[datetime]:
        # Count ourselves from the first period's start: dateutil numbers WEEKLY BYSETPOS
        # positions from DTSTART instead of from the start of the week.
        naive = self.origin.replace(tzinfo=None)
        start = period_start(self.args, naive, naive) or naive
        rule = self.args.build(start.replace(tzinfo=self.origin.tzinfo), self.until)
        selected = itertools.dropwhile(lambda item: item < self.origin, _guarded(rule))
        return itertools.islice(selected, self.count)


def _guarded(rule: Iterable[datetime]) -> Iterator[datetime]:
    """Iterate a dateutil rule, treating its "empty rule" errors as exhaustion."""
    try:
        yield from rule
    except (ValueError, TypeError):
        return
