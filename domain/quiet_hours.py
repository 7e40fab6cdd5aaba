"""Quiet hours: local-time windows in which notifying steps wait, and when a window ends.

A window ``{start: "22:00", end: "07:30"}`` is read in a time zone's wall time and may cross
midnight. DST follows the project's policy: a window end that falls into a spring-forward gap
ends the window at the first instant after the gap; one that occurs twice (fall back) ends it
at its first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.errors import RuleViolation
from domain.events import QuietWindow
from domain.schedules.zones import instant_of, wall_offsets

CLOCK_PATTERN = r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$"
_CLOCK = re.compile(CLOCK_PATTERN)
WINDOWS_MAX = 20


def parse_clock(text: str, field: str) -> time:
    """``HH:MM`` or ``HH:MM:SS`` on a 24-hour clock."""
    match = _CLOCK.match(text)
    if match is None:
        raise RuleViolation(field, "must be a 24-hour time HH:MM or HH:MM:SS, e.g. 22:00")
    hour, minute, second = match.group(1), match.group(2), match.group(3) or "0"
    return time(int(hour), int(minute), int(second))


def check_windows(windows: Sequence[QuietWindow], field: str) -> None:
    """Every window has two valid times that differ (a window cannot be empty or all day)."""
    if len(windows) > WINDOWS_MAX:
        raise RuleViolation(field, f"must list at most {WINDOWS_MAX} windows")
    for index, window in enumerate(windows):
        start = parse_clock(window.start, f"{field}[{index}].start")
        end = parse_clock(window.end, f"{field}[{index}].end")
        if start == end:
            raise RuleViolation(f"{field}[{index}].end", "must differ from start")
    if covers_whole_day(windows):
        raise RuleViolation(field, "must leave some time of the day outside every window")


def _seconds(clock: time) -> int:
    return clock.hour * 3600 + clock.minute * 60 + clock.second


def covers_whole_day(windows: Sequence[QuietWindow]) -> bool:
    """True if the windows together hold every second of the day (nothing could ever run)."""
    spans: list[tuple[int, int]] = []
    for window in windows:
        start = _seconds(parse_clock(window.start, "start"))
        end = _seconds(parse_clock(window.end, "end"))
        spans.extend([(start, end)] if start < end else [(start, 86_400), (0, end)])
    reached = 0
    for start, end in sorted(spans):
        if start > reached:
            return False
        reached = max(reached, end)
    return reached >= 86_400


def _inside(wall: time, start: time, end: time) -> bool:
    if start < end:
        return start <= wall < end
    return wall >= start or wall < end  # crosses midnight


def _end_instant(zone: ZoneInfo, wall: datetime, current: datetime) -> datetime:
    """The first instant after ``current`` that the wall time ``wall`` occurs.

    A repeated wall time (fall back) means its first pass, unless that is already over (we
    are in the repeated hour); a wall time inside a gap means the first instant after the gap.
    """
    before, after = wall_offsets(zone, wall)
    if before >= after:  # normal, or repeated: fold=0 (``before``) is the first pass
        for candidate in (instant_of(wall, before), instant_of(wall, after)):
            if candidate > current:
                return candidate
        return instant_of(wall, after)
    # In a gap: read with the later offset the wall time lands before the jump, with the
    # earlier one after it; the jump is where the offset changes, found by bisection.
    low, high = instant_of(wall, after), instant_of(wall, before)
    while high - low > timedelta(milliseconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)  # offsets change on whole seconds


def _window_end(local: datetime, start: time, end: time) -> datetime:
    """The naive wall time the window around ``local`` ends."""
    day: date = local.date()
    if start > end and local.time() >= start:
        day += timedelta(days=1)
    return datetime.combine(day, end)


def quiet_until(now: datetime, windows: Sequence[QuietWindow], zone: ZoneInfo) -> datetime | None:
    """When the quiet hours holding ``now`` end (UTC), or None if ``now`` is not in any.

    Windows that touch or overlap are followed one after another, so the answer is an
    instant outside every window (bounded: windows covering the whole day end somewhere).
    """
    parsed = [(parse_clock(w.start, "start"), parse_clock(w.end, "end")) for w in windows]
    current = now.astimezone(UTC)
    moved = False
    for _ in range(2 * len(parsed) + 1):
        local = current.astimezone(zone)
        wall = local.time().replace(tzinfo=None)
        holding = [(s, e) for s, e in parsed if _inside(wall, s, e)]
        if not holding:
            break
        local_naive = local.replace(tzinfo=None)
        ends = [_end_instant(zone, _window_end(local_naive, s, e), current) for s, e in holding]
        current = max(ends)
        moved = True
    return current if moved else None
