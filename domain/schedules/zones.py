"""Time-zone loading (pinned to the tzdata package) and wall-time/instant conversions."""

from __future__ import annotations

import functools
import importlib.resources
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from domain.schedules.errors import ScheduleError

ZERO = timedelta(0)
ONE_SECOND = timedelta(seconds=1)
# Offsets are sampled this far either side of an instant; wider than any real DST jump.
_PROBE = timedelta(hours=26)
_NAME_RE = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*")
# The instants a schedule accepts and produces: a day inside the calendar's ends, so every one
# is a date-time in every zone (no UTC offset reaches a day) and the scans around it fit too.
MIN_INSTANT = datetime(1, 1, 2, tzinfo=UTC)
MAX_INSTANT = datetime(9999, 12, 31, tzinfo=UTC)  # excluded
SUPPORTED_RANGE = "0001-01-02T00:00:00Z to before 9999-12-31T00:00:00Z"


class TzdataZone(ZoneInfo):
    """A ZoneInfo read from the ``tzdata`` package rather than the host's zoneinfo files.

    Pinning the database makes every host compute the same instants; the OS copy may lag
    (e.g. Europe/Chisinau moved to EU transition times in tzdata 2025c).
    """

    def __reduce__(self) -> tuple[object, tuple[str]]:
        # ZoneInfo.from_file objects refuse to pickle; re-load by name instead.
        return (validate_timezone, (str(self),))


@functools.cache
def _zone_names() -> frozenset[str]:
    text = importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


@functools.cache
def _load_zone(name: str) -> TzdataZone:
    resource = importlib.resources.files("tzdata.zoneinfo").joinpath(*name.split("/"))
    with resource.open("rb") as handle:
        return TzdataZone.from_file(handle, key=name)


def validate_timezone(name: str) -> ZoneInfo:
    """Return the zone for an IANA name, or raise ScheduleError(field="timezone")."""
    if not isinstance(name, str) or not name:
        raise ScheduleError("timezone", "must be a non-empty IANA time zone name")
    if not _NAME_RE.fullmatch(name) or name not in _zone_names():
        raise ScheduleError("timezone", f"unknown time zone {name!r}")
    return _load_zone(name)


def require_aware(value: datetime, name: str) -> datetime:
    """Return ``value`` in UTC; naive datetimes are a programming error here."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def user_instant(value: datetime, zone: ZoneInfo, field: str) -> datetime:
    """A given date-time as a UTC instant: with an offset as it says, without one as wall time
    in ``zone`` (a skipped time takes the offset before the gap, a repeated one its first pass).

    The one check of a user's instant: outside the supported range it is a ScheduleError
    naming ``field``, never an OverflowError from the arithmetic after it.
    """
    naive = value.utcoffset() is None
    try:
        instant = wall_to_instant(value, zone) if naive else value.astimezone(UTC)
    except OverflowError:  # the conversion itself left the calendar
        instant = None
    if instant is None or not MIN_INSTANT <= instant < MAX_INSTANT:
        shown = f"{value.isoformat()} in {zone.key}" if naive else value.isoformat()
        raise ScheduleError(field, f"{shown} is outside the supported range ({SUPPORTED_RANGE})")
    return instant


def in_range(instant: datetime, zone: ZoneInfo) -> datetime | None:
    """An occurrence in ``zone``, or None past the supported range (a schedule ends there)."""
    return instant.astimezone(zone) if MIN_INSTANT <= instant < MAX_INSTANT else None


def anchor_dtstart(now: datetime, tz: ZoneInfo) -> datetime:
    """The creation instant as wall time in ``tz``, with seconds and microseconds zeroed."""
    return require_aware(now, "now").astimezone(tz).replace(second=0, microsecond=0)


def offset(zone: ZoneInfo, wall: datetime) -> timedelta:
    """UTC offset of a naive wall time in ``zone`` (its ``fold`` picks the side of a jump)."""
    value = zone.utcoffset(wall)
    return ZERO if value is None else value


def wall_offsets(zone: ZoneInfo, wall: datetime) -> tuple[timedelta, timedelta]:
    """Offsets for fold=0 and fold=1: equal normally, fold0 < fold1 in a gap, > in an overlap."""
    return offset(zone, wall.replace(fold=0)), offset(zone, wall.replace(fold=1))


def instant_of(wall: datetime, off: timedelta) -> datetime:
    """The UTC instant of a naive wall time read with a given offset."""
    return wall.replace(tzinfo=UTC, fold=0) - off


def wall_to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """Naive wall time to UTC the RFC 5545 way: gap = offset before it, overlap = first pass."""
    return instant_of(wall, offset(zone, wall.replace(fold=0)))


def scan_floor(instant: datetime, zone: ZoneInfo) -> datetime:
    """Lowest naive wall time whose instant may lie after ``instant`` (UTC).

    Wall times run backwards across an overlap and a gap-shifted time lands later than the
    wall times just after the gap, so scanning starts at the smallest nearby offset.
    """
    offsets = [_offset_at(instant, delta, zone) for delta in (-_PROBE, ZERO, _PROBE)]
    lowest = min((o for o in offsets if o is not None), default=ZERO)
    return (instant + lowest).replace(tzinfo=None)


def _offset_at(instant: datetime, delta: timedelta, zone: ZoneInfo) -> timedelta | None:
    try:  # near datetime.min/max some probes do not exist
        return (instant + delta).astimezone(zone).utcoffset()
    except OverflowError:
        return None


def gap_end(wall: datetime, zone: ZoneInfo, before: timedelta, after: timedelta) -> datetime:
    """The UTC instant the clocks jumped over the gap containing naive ``wall``.

    Found by bisection on whole seconds (tzdata transitions are whole seconds), so gaps of
    any size — 30 minutes on Lord Howe, a whole day on Samoa — come out exact.
    """
    low = int(instant_of(wall, after).timestamp())  # still before the jump
    high = int(instant_of(wall, before).timestamp())  # already after it
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def lookahead(zone: ZoneInfo, wall: datetime) -> timedelta:
    """How far later wall times can still map to earlier instants than ``wall`` does."""
    fold0, fold1 = wall_offsets(zone, wall)
    return abs(fold1 - fold0)
