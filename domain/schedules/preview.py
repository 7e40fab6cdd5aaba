"""preview_request: one decoded JSON line in, occurrences or an error message out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from domain.schedules.base import next_occurrences
from domain.schedules.factory import compile_schedule
from domain.schedules.zones import anchor_dtstart, require_aware, validate_timezone

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
    after: datetime
    count: int
    dtstart: datetime


def preview_request(obj: object, now: datetime) -> dict[str, object]:
    """``{"occurrences": [ISO strings]}`` or ``{"error": message}``; never raises on bad input."""
    try:
        request = _parse(obj, now)
        schedule = compile_schedule(
            request.kind, request.expr, request.tz, dtstart=request.dtstart, now=now
        )
        found = next_occurrences(schedule, request.after, request.count)
    except (ValueError, TypeError, OverflowError) as exc:  # ScheduleError is a ValueError
        return {"error": str(exc)}
    return {"occurrences": [item.isoformat() for item in found]}


def _parse(obj: object, now: datetime) -> _Request:
    if not isinstance(obj, Mapping):
        raise RequestError("request must be a JSON object")
    renamed = [f"{key}: renamed {RENAMED[key]}" for key in obj if key in RENAMED]
    if renamed:
        raise RequestError("; ".join(renamed))
    unknown = sorted(str(key) for key in obj if key not in _REQUIRED + _OPTIONAL)
    if unknown:
        raise RequestError(f"unknown key(s): {', '.join(unknown)}")
    kind, expr, tz = (_string(obj, key) for key in _REQUIRED)
    zone = validate_timezone(tz)
    default_after = require_aware(now, "now")
    return _Request(
        kind=kind,
        expr=expr,
        tz=tz,
        after=_instant(obj, "after", zone, default_after),
        count=_count(obj.get("count", DEFAULT_COUNT)),
        dtstart=_instant(obj, "dtstart", zone, anchor_dtstart(now, zone)),
    )


def _string(obj: Mapping[object, object], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise RequestError(f"{key}: missing or not a string")
    return value


def _instant(obj: Mapping[object, object], key: str, zone: ZoneInfo, default: datetime) -> datetime:
    """An optional ISO-8601 value; one without offset is wall time in the request's zone."""
    if key not in obj:
        return default
    value = obj[key]
    if not isinstance(value, str):
        raise RequestError(f"{key}: must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RequestError(f"{key}: {value!r} is not an ISO-8601 date-time") from None
    aware = parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=zone)
    try:
        aware.astimezone(UTC)
    except OverflowError:
        raise RequestError(f"{key}: {value!r} is out of range") from None
    return aware


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise RequestError(f"count: must be an integer from 1 to {MAX_COUNT}")
    return value
