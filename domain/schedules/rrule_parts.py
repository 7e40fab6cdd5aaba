"""Strict parser for an RRULE/EXRULE value (RFC 5545 section 3.3.10)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from domain.schedules.errors import ScheduleError, expr_error

Freq = Literal[0, 1, 2, 3, 4, 5, 6]
YEARLY: Freq = 0
MONTHLY: Freq = 1
WEEKLY: Freq = 2
DAILY: Freq = 3
HOURLY: Freq = 4
_FREQS: dict[str, Freq] = {
    "YEARLY": 0,
    "MONTHLY": 1,
    "WEEKLY": 2,
    "DAILY": 3,
    "HOURLY": 4,
    "MINUTELY": 5,
    "SECONDLY": 6,
}
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# name: (low, high, signed) — signed parts accept -high..-low as well.
_INT_PARTS: dict[str, tuple[int, int, bool]] = {
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
_KNOWN = {"FREQ", "UNTIL", "COUNT", "INTERVAL", "WKST", "BYDAY", *_INT_PARTS}
_SIGNED_INT = re.compile(r"[+-]?[0-9]{1,4}")
_UNSIGNED_INT = re.compile(r"[0-9]{1,9}")
_BYDAY = re.compile(r"([+-]?[0-9]{1,2})?([A-Z]{2})")
_UNTIL = re.compile(r"([0-9]{8})(?:T([0-9]{6})(Z?))?")


@dataclass(frozen=True, slots=True)
class Until:
    """UNTIL as written: a naive value plus how to read it (UTC, floating or DATE)."""

    value: datetime
    kind: Literal["utc", "floating", "date"]


@dataclass(frozen=True, slots=True)
class RuleParts:
    """A validated recurrence rule; empty tuples mean "not given"."""

    freq: Freq
    interval: int = 1
    count: int | None = None
    until: Until | None = None
    wkst: int = 0
    byday: tuple[tuple[int, int | None], ...] = ()  # (weekday 0=MO, ordinal or None)
    bysecond: tuple[int, ...] = ()
    byminute: tuple[int, ...] = ()
    byhour: tuple[int, ...] = ()
    bymonthday: tuple[int, ...] = ()
    byyearday: tuple[int, ...] = ()
    byweekno: tuple[int, ...] = ()
    bymonth: tuple[int, ...] = ()
    bysetpos: tuple[int, ...] = ()


def parse_rule(text: str, label: str = "RRULE") -> RuleParts:
    """Parse ``FREQ=...;...``; raise ScheduleError naming the bad part."""
    raw = _split_parts(text.strip(), label)
    if "FREQ" not in raw:
        raise _error(label, "FREQ is required")
    if "COUNT" in raw and "UNTIL" in raw:
        raise _error(label, "COUNT and UNTIL must not both be given")
    values: dict[str, Any] = {"freq": _parse_freq(raw.pop("FREQ"), label)}
    for name, value in raw.items():
        values[name.lower()] = _parse_value(name, value, label)
    parts = RuleParts(**values)
    _check_combination(parts, label)
    return parts


def _split_parts(text: str, label: str) -> dict[str, str]:
    # A single trailing ';' is tolerated: Google Calendar emits it (libical accepts it too).
    body = text[:-1] if text.endswith(";") else text
    if not body:
        raise _error(label, "rule is empty")
    raw: dict[str, str] = {}
    for part in body.split(";"):
        name, equals, value = part.partition("=")
        name = name.strip().upper()
        if not part.strip():
            raise _error(label, "has an empty rule part (';;')")
        if name not in _KNOWN:
            raise _error(label, f"unknown rule part {name or part!r}")
        if not equals or not value.strip():
            raise _error(label, f"{name} is empty")
        if name in raw:
            raise _error(label, f"{name} is given twice")
        raw[name] = value.strip().upper()
    return raw


def _parse_freq(value: str, label: str) -> Freq:
    if value not in _FREQS:
        raise _error(label, f"unknown FREQ {value!r}")
    return _FREQS[value]


def _parse_value(name: str, value: str, label: str) -> object:
    if name in ("COUNT", "INTERVAL"):
        return _positive(name, value, label)
    if name == "UNTIL":
        return _parse_until(value, label)
    if name == "WKST":
        if value not in WEEKDAYS:
            raise _error(label, f"WKST value {value!r} is not a weekday (MO..SU)")
        return WEEKDAYS.index(value)
    if name == "BYDAY":
        return tuple(_parse_byday(item, label) for item in _items(name, value, label))
    return tuple(_parse_int(name, item, label) for item in _items(name, value, label))


def _items(name: str, value: str, label: str) -> list[str]:
    items = value.split(",")
    if any(not item for item in items):
        raise _error(label, f"{name} has an empty list item")
    return items


def _positive(name: str, value: str, label: str) -> int:
    if not _UNSIGNED_INT.fullmatch(value) or int(value) == 0:
        raise _error(label, f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _parse_until(value: str, label: str) -> Until:
    match = _UNTIL.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        day, clock, zulu = match.groups()
        if clock is None:
            return Until(datetime.strptime(day, "%Y%m%d"), "date")
        parsed = datetime.strptime(day + clock, "%Y%m%d%H%M%S")
    except ValueError:
        raise _error(label, f"UNTIL {value!r} is not a DATE or DATE-TIME") from None
    return Until(parsed, "utc" if zulu else "floating")


def _parse_int(name: str, item: str, label: str) -> int:
    low, high, signed = _INT_PARTS[name]
    if not _SIGNED_INT.fullmatch(item):
        raise _error(label, f"{name} value {item!r} is not an integer")
    value = int(item)
    if not low <= abs(value) <= high or (value < 0 and not signed):
        bounds = f"{low}..{high}" + (f" or -{high}..-{low}" if signed else "")
        raise _error(label, f"{name} value {value} is out of range {bounds}")
    return value


def _parse_byday(item: str, label: str) -> tuple[int, int | None]:
    match = _BYDAY.fullmatch(item)
    if match is None or match.group(2) not in WEEKDAYS:
        raise _error(label, f"BYDAY value {item!r} is not a weekday like MO, 1MO or -1FR")
    ordinal = None if match.group(1) is None else int(match.group(1))
    if ordinal is not None and not 1 <= abs(ordinal) <= 53:
        raise _error(label, f"BYDAY ordinal {ordinal} is out of range 1..53 or -53..-1")
    return WEEKDAYS.index(match.group(2)), ordinal


def _check_combination(parts: RuleParts, label: str) -> None:
    ordinals = [n for _, n in parts.byday if n is not None]
    if ordinals and parts.freq not in (YEARLY, MONTHLY):
        raise _error(label, "BYDAY ordinals (e.g. 1MO) need FREQ=MONTHLY or FREQ=YEARLY")
    if ordinals and parts.freq == YEARLY and parts.byweekno:
        raise _error(label, "BYDAY ordinals (e.g. 1MO) cannot be combined with BYWEEKNO")
    if parts.freq == MONTHLY and any(abs(n) > 5 for n in ordinals):
        raise _error(label, "BYDAY ordinal must be within 1..5 or -5..-1 for FREQ=MONTHLY")
    if parts.bysetpos and not _has_other_by_part(parts):
        raise _error(label, "BYSETPOS needs another BYxxx rule part")


def _has_other_by_part(parts: RuleParts) -> bool:
    others = (parts.byday, parts.bysecond, parts.byminute, parts.byhour, parts.bymonthday)
    return any(others) or any((parts.byyearday, parts.byweekno, parts.bymonth))


def _error(label: str, reason: str) -> ScheduleError:
    return expr_error(f"{label}: {reason}")
