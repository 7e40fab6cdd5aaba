"""A task's next occurrences with the clock changes between them marked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
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
            if local == change:
                note = "its wall time was skipped (clocks went forward): fires just after"
        marks.append(Mark("occurrence", local, note))
        previous = local
    return marks


def _change(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The first instant after ``before`` whose offset differs from it (bisection to 1 s)."""
    low, high = before, after
    while high - low > _SECOND:
        middle = (low + (high - low) / 2).astimezone(tz)
        if middle.utcoffset() == before.utcoffset():
            low = middle
        else:
            high = middle
    return high.astimezone(tz).replace(microsecond=0)


def _describe(before: datetime, change: datetime) -> str:
    old, new = before.utcoffset(), change.utcoffset()
    assert old is not None
    assert new is not None
    way = "forward" if new > old else "back"
    return f"Clocks go {way} {span(abs(new - old))}: {offset(before)} → {offset(change)}"


def _repeated(local: datetime, tz: ZoneInfo) -> str:
    """A note if this wall time happens twice that day (the clocks went back)."""
    other = local.replace(fold=1 - local.fold)
    if other.utcoffset() == local.utcoffset():
        return ""
    return f"in the repeated hour ({'second' if local.fold else 'first'} pass)"
