"""The Schedule protocol every compiled schedule implements, and iteration over it."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Schedule(Protocol):
    """A compiled schedule: pure, reusable, safe to call with any ``after``."""

    def next_after(self, after: datetime) -> datetime | None:
        """First occurrence strictly after the instant ``after``, in the task's zone, or None."""
        ...


def next_occurrences(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """Up to ``count`` successive occurrences strictly after ``after``."""
    found: list[datetime] = []
    cursor = after
    while len(found) < count:
        following = schedule.next_after(cursor)
        if following is None:
            break
        found.append(following)
        cursor = following
    return found
