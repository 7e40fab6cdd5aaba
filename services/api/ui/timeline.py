"""A task's next occurrences with the clock changes between them marked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from services.api.ui.formatting import offset, span, zone

_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Mark:
    """A row of the timeline: an occurrence, or a change of the zone's UTC offset."""

    kind: Literal["occurrence", "dst"]
    at: datetime
    note: str = ""


def timeline(instants: list[datetime], zone_name: str, now: datetime) -> list[Mark]:
    """The occurrences in order, with a ``dst`` row wherever the offset changes before one
    (from now on), and notes on occurrences the change moved or that fall in a repeated hour."""
    tz = zone(zone_name)
    marks: list[Mark] = []
    previous = now.astimezone(tz)
    for instant in instants:
        local = instant.astimezone(tz)
        note = _repeated(local, tz)
        if local.utcoffset() != previous.utcoffset():
            change = _change(previous, local, tz)
            marks.append(Mark("dst", change, _describe(previous, change)))
            forward = _offset(change) > _offset(previous)
            if forward and local.astimezone(UTC) == change.astimezone(UTC):
                note = "its wall time was skipped (clocks went forward): fires just after"
        marks.append(Mark("occurrence", local, note))
        previous = local
    return marks


def _offset(local: datetime) -> timedelta:
    found = local.utcoffset()
    assert found is not None
    return found


def _change(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The first instant after ``before`` whose offset differs from it (bisection to 1 s).
    Worked in UTC: arithmetic between two times of one zone ignores their offsets."""
    low, high = before.astimezone(UTC), after.astimezone(UTC)
    while high - low > _SECOND:
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == before.utcoffset():
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0).astimezone(tz)


def _describe(before: datetime, change: datetime) -> str:
    old, new = _offset(before), _offset(change)
    way = "forward" if new > old else "back"
    return f"Clocks go {way} {span(abs(new - old))}: {offset(before)} → {offset(change)}"


def _repeated(local: datetime, tz: ZoneInfo) -> str:
    """A note if this wall time happens twice that day (the clocks went back)."""
    other = local.replace(fold=1 - local.fold)
    if other.utcoffset() == local.utcoffset():
        return ""
    return f"in the repeated hour ({'second' if local.fold else 'first'} pass)"
