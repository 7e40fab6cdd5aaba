"""Previewing a schedule's next occurrences before creating a task with it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec

from domain.schedules import preview_occurrences


class SchedulePreview(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A rule to preview, named as on a task; a bare RRULE is anchored at ``dtstart`` (default:
    now, seconds zeroed). ``after`` and ``dtstart`` without an offset are wall time in
    ``timezone``."""

    schedule_kind: Literal["cron", "rrule", "once"]
    schedule_expr: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "UTC"
    after: datetime | None = None
    count: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    dtstart: datetime | None = None


class Occurrences(msgspec.Struct, frozen=True):
    """Instants with their UTC offsets, in the rule's zone."""

    occurrences: list[str]


def preview_schedule(data: SchedulePreview) -> Occurrences:
    """The next ``count`` occurrences strictly after ``after`` (default now)."""
    found = preview_occurrences(
        data.schedule_kind,
        data.schedule_expr,
        data.timezone,
        after=data.after,
        dtstart=data.dtstart,
        count=data.count,
        now=datetime.now(UTC),
    )
    return Occurrences([instant.isoformat() for instant in found])
