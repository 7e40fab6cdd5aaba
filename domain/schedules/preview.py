"""Previewing a rule: its next occurrences (HTTP, MCP, CLI), and the CLI's JSON-line answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from domain.schedules.base import next_occurrences
from domain.schedules.factory import compile_schedule
from domain.schedules.zones import (
    anchor_dtstart,
    require_aware,
    user_instant,
    validate_timezone,
)

DEFAULT_COUNT = 10
MAX_COUNT = 1000
_REQUIRED = ("schedule_kind", "schedule_expr", "timezone")
_OPTIONAL = ("after", "count", "dtstart")
# Spellings of earlier releases: refused with the new name, so a script learns what to change.
RENAMED = {"kind": "schedule_kind", "expr": "schedule_expr", "tz": "timezone"}


class RequestError(ValueError):
    """A preview line is malformed (as opposed to describing an invalid schedule)."""


@dataclass(frozen=True, slots=True)
class _Request:
    kind: str
    expr: str
    tz: str
    after: datetime | None
    count: int
    dtstart: datetime | None


def preview_occurrences(
    kind: str,
    expr: str,
    timezone: str,
    *,
    after: datetime | None,
    dtstart: datetime | None,
    count: int,
    now: datetime,
) -> list[datetime]:
    """The next ``count`` occurrences strictly after ``after`` (default ``now``).

    ``after`` and ``dtstart`` without an offset are wall time in ``timezone``; a bare RRULE
    is anchored at ``dtstart`` (default: ``now``, seconds zeroed). Every refusal is a
    ScheduleError naming its field, an instant out of the supported range included.
    """
    zone = validate_timezone(timezone)
    start = require_aware(now, "now") if after is None else user_instant(after, zone, "after")
    # Only an RRULE needs an anchor; a cron rule given one would start there.
    anchor = anchor_dtstart(now, zone) if dtstart is None and kind == "rrule" else dtstart
    schedule = compile_schedule(kind, expr, timezone, dtstart=anchor, now=now)
    return next_occurrences(schedule, start, count)


def preview_request(obj: object, now: datetime) -> dict[str, object]:
    """``{"occurrences": [ISO strings]}`` or ``{"error": message}``; never raises on bad input."""
    try:
        request = _parse(obj)
        found = preview_occurrences(
            request.kind,
            request.expr,
            request.tz,
            after=request.after,
            dtstart=request.dtstart,
            count=request.count,
            now=now,
        )
    except (ValueError, TypeError, OverflowError) as exc:  # ScheduleError is a ValueError
        return {"error": str(exc)}
    return {"occurrences": [item.isoformat() for item in found]}


def _parse(obj: object) -> _Request:
    if not isinstance(obj, Mapping):
        raise RequestError("request must be a JSON object")
    renamed = [f"{key}: renamed {RENAMED[key]}" for key in obj if key in RENAMED]
    if renamed:
        raise RequestError("; ".join(renamed))
    unknown = sorted(str(key) for key in obj if key not in _REQUIRED + _OPTIONAL)
    if unknown:
        raise RequestError(f"unknown key(s): {', '.join(unknown)}")
    kind, expr, tz = (_string(obj, key) for key in _REQUIRED)
    return _Request(
        kind=kind,
        expr=expr,
        tz=tz,
        after=_date_time(obj, "after"),
        count=_count(obj.get("count", DEFAULT_COUNT)),
        dtstart=_date_time(obj, "dtstart"),
    )


def _string(obj: Mapping[object, object], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise RequestError(f"{key}: missing or not a string")
    return value


def _date_time(obj: Mapping[object, object], key: str) -> datetime | None:
    """An optional ISO-8601 value, as written (without an offset it stays a wall time)."""
    if key not in obj:
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise RequestError(f"{key}: must be an ISO-8601 string")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise RequestError(f"{key}: {value!r} is not an ISO-8601 date-time") from None


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise RequestError(f"count: must be an integer from 1 to {MAX_COUNT}")
    return value
