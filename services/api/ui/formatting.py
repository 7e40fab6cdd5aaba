"""How the dashboard shows values: instants in a zone with their offset, durations and JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from markupsafe import Markup

from domain.schedules.errors import ScheduleError
from domain.schedules.zones import validate_timezone


def zone(name: str | None) -> ZoneInfo:
    """The named zone (UTC for a missing or unknown name: a page must still render)."""
    try:
        return validate_timezone(name or "UTC")
    except ScheduleError:
        return validate_timezone("UTC")


def offset(local: datetime) -> str:
    """``+03:00`` for a local datetime."""
    text = local.strftime("%z") or "+0000"
    return f"{text[:3]}:{text[3:5]}"


def local_text(value: datetime, zone_name: str | None = None) -> str:
    """``2026-03-29 08:30 +03:00 Europe/Chisinau`` (seconds only when there are any)."""
    name = zone_name or "UTC"
    local = value.astimezone(zone(name))
    pattern = "%Y-%m-%d %H:%M:%S" if local.second or local.microsecond else "%Y-%m-%d %H:%M"
    return f"{local.strftime(pattern)} {offset(local)} {name}"


def _instant(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def when(value: datetime | str | None, zone_name: str | None = None) -> Markup:
    """A ``<time>`` element: local time with offset and zone; the UTC instant as its title."""
    if value is None or value == "":
        return Markup("—")
    instant = _instant(value)
    utc = instant.astimezone(UTC)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M:%S UTC"), local_text(instant, zone_name)
    )


def relative(value: datetime | str | None, now: datetime | None = None) -> str:
    """``in 4 min`` or ``3 h ago``."""
    if value is None or value == "":
        return ""
    delta = _instant(value) - (now or datetime.now(UTC))
    text = span(abs(delta))
    return f"in {text}" if delta > timedelta(0) else f"{text} ago"


def span(delta: timedelta) -> str:
    """A rough length: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 60:
        return f"{minutes} min"
    if hours < 48:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def duration(ms: float | None) -> str:
    """A step's duration: ``12 ms``, ``1.40 s``, ``2 min 3 s``."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    return f"{int(ms // 60_000)} min {int(ms % 60_000 // 1000)} s"


def pretty(value: Any) -> str:
    """JSON with two-space indents (``msgspec.Raw`` and datetimes included)."""
    if isinstance(value, msgspec.Raw):
        return msgspec.json.format(bytes(value), indent=2).decode()
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


def decoded(value: Any) -> Any:
    """Stored JSON (``msgspec.Raw``) as Python values; anything else unchanged."""
    return msgspec.json.decode(bytes(value)) if isinstance(value, msgspec.Raw) else value


FILTERS = {
    "when": when,
    "relative": relative,
    "duration": duration,
    "pretty": pretty,
    "decoded": decoded,
}
