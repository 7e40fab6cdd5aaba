"""Cron schedules: field-by-field search for the next local wall time, then DST policy."""

from __future__ import annotations

import calendar
from bisect import bisect_left
from datetime import date, datetime
from zoneinfo import ZoneInfo

from domain.schedules.cron_parse import CronSpec, parse_cron
from domain.schedules.zones import (
    ONE_SECOND,
    gap_end,
    in_range,
    instant_of,
    require_aware,
    scan_floor,
    wall_offsets,
)

_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_LAST_YEAR = 9999


class CronSchedule:
    """A cron expression evaluated in local wall time of one zone."""

    __slots__ = ("expr", "spec", "zone")

    def __init__(self, expr: str, zone: ZoneInfo) -> None:
        self.expr = expr
        self.spec = parse_cron(expr)
        self.zone = zone

    def next_after(self, after: datetime) -> datetime | None:
        limit = require_aware(after, "after")
        try:
            found = self._search(limit)
        except OverflowError:  # the search ran past datetime.max
            return None
        return None if found is None else in_range(found, self.zone)

    def _search(self, limit: datetime) -> datetime | None:
        # Wall times are visited in order; instants are monotonic in wall time except the
        # second pass of an overlap, so stop once a first-pass instant passes the limit.
        best: datetime | None = None
        wall = next_wall(self.spec, _ceil_second(scan_floor(limit, self.zone)))
        while wall is not None:
            first, second = self._instants(wall)
            for instant in (first, second):
                if instant is not None and instant > limit and (best is None or instant < best):
                    best = instant
            if first is not None and first > limit:
                return best
            wall = next_wall(self.spec, wall + ONE_SECOND)
        return best

    def _instants(self, wall: datetime) -> tuple[datetime | None, datetime | None]:
        """Firing instants of a matching wall time: (first pass or gap end, second pass)."""
        fold0, fold1 = wall_offsets(self.zone, wall)
        if fold0 == fold1:
            return instant_of(wall, fold0), None
        if fold0 < fold1:  # skipped by a spring-forward jump
            return (gap_end(wall, self.zone, fold0, fold1) if self.spec.fixed else None), None
        second = None if self.spec.fixed else instant_of(wall, fold1)
        return instant_of(wall, fold0), second


def _ceil_second(wall: datetime) -> datetime:
    if wall.microsecond:
        return wall.replace(microsecond=0) + ONE_SECOND
    return wall


def next_wall(spec: CronSpec, start: datetime) -> datetime | None:
    """First naive wall time >= ``start`` (whole seconds) matching every field."""
    year, month, day = start.year, start.month, start.day
    hour, minute, second = start.hour, start.minute, start.second
    while year <= _LAST_YEAR:
        if month > 12:
            year, month = year + 1, 1
            continue
        found_month = _at_least(spec.months, month)
        if found_month is None:
            year, month, day, hour, minute, second = year + 1, 1, 1, 0, 0, 0
            continue
        if found_month != month:
            month, day, hour, minute, second = found_month, 1, 0, 0, 0
        found_day = _next_day(spec, year, month, day)
        if found_day is None:
            month, day, hour, minute, second = month + 1, 1, 0, 0, 0
            continue
        if found_day != day:
            day, hour, minute, second = found_day, 0, 0, 0
        clock = _next_time(spec, hour, minute, second)
        if clock is None:
            day, hour, minute, second = day + 1, 0, 0, 0
            continue
        return datetime(year, month, day, *clock)
    return None


def _next_time(spec: CronSpec, hour: int, minute: int, second: int) -> tuple[int, int, int] | None:
    """First (hour, minute, second) >= the given time of day, or None for tomorrow."""
    while hour < 24:
        found_hour = _at_least(spec.hours, hour)
        if found_hour is None:
            return None
        if found_hour != hour:
            hour, minute, second = found_hour, 0, 0
        found_minute = _at_least(spec.minutes, minute)
        if found_minute is None:
            hour, minute, second = hour + 1, 0, 0
            continue
        if found_minute != minute:
            minute, second = found_minute, 0
        found_second = _at_least(spec.seconds, second)
        if found_second is not None:
            return hour, minute, found_second
        minute, second = minute + 1, 0
    return None


def _next_day(spec: CronSpec, year: int, month: int, day: int) -> int | None:
    last = _days_in(year, month)
    if spec.every_day:
        return day if day <= last else None
    if day > last:
        return None
    weekday = (date(year, month, day).isoweekday()) % 7  # cron: 0 = Sunday
    for candidate in range(day, last + 1):
        if spec.day_matches(candidate, weekday):
            return candidate
        weekday = (weekday + 1) % 7
    return None


def _days_in(year: int, month: int) -> int:
    if month == 2 and calendar.isleap(year):
        return 29
    return _DAYS_IN_MONTH[month - 1]


def _at_least(values: tuple[int, ...], value: int) -> int | None:
    index = bisect_left(values, value)
    return values[index] if index < len(values) else None
